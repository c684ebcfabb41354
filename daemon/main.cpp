#include "daemon/daemon.h"

int main(int argc, char** argv) { return asyncops::daemon_main(argc, argv); }
