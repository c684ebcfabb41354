#include "workers/worker_main.h"

int main(int argc, char** argv) { return asyncops::worker_main(argc, argv); }
