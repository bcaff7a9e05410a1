/* Stand-in llama-server: answers --version like llama.cpp's binaries do. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("version: 0 (fake-llama.cpp)\nbuilt with the " FAKE_BACKEND " backend\n");
		return 0;
	}
	fprintf(stderr, "fake llama-server: a test stand-in, it serves nothing\n");
	return 1;
}
