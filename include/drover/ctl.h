/* `drover ctl`: a client of the control socket for scripts and terminals. */
#ifndef DROVER_CTL_H
#define DROVER_CTL_H

/* argv[0] is "ctl". Returns the process exit code. */
int ctl_main(int argc, char **argv);

/* The socket to talk to: socket_opt (-s) if given, else the one the config
 * names: [drover] socket, else <state_dir>/drover.sock.
 * Falls back to <config dir>/.drover/drover.sock when the config cannot be
 * read, so that ctl still reaches a drover while its config is being edited. */
void ctl_socket_path(const char *socket_opt, const char *config_path, char *out,
                     unsigned long outlen);

#endif
