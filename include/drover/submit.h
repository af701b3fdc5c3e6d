/* `drover submit`: put tasks into a running drover's queue. */
#ifndef DROVER_SUBMIT_H
#define DROVER_SUBMIT_H

/* argv[0] is "submit". Returns the process exit code. */
int submit_main(int argc, char **argv);

#endif
