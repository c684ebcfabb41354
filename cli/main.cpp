#include "cli/app.h"

int main(int argc, char** argv) { return asyncops::cli_main(argc, argv); }
