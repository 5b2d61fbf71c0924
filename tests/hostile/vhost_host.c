/*
 * The vhost-user back-end in a C process, for running it under ASan/UBSan
 * (Deno cannot load the sanitizer build): a port vale0:vm of $VALE_RUN_DIR
 * forwarded by c-src/fwd to a vhost-user socket with offloads, exactly what
 * `vale-ctl -a vale0:vhost:SOCK` runs. Prints "ready", serves until stdin
 * closes, then prints the device's JSON state and exits 0.
 *
 *   vhost_host SOCK
 */
#include "vale.h"
#include "io.h"
#include "../../c-src/fwd/fwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: vhost_host SOCK\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *run = getenv("VALE_RUN_DIR");
	struct vale_open_req req = {0};
	vale_port *p;
	if (vale_open(run, "vale0", "vm", &req, &p) < 0) {
		fprintf(stderr, "vale_open: %s\n", vale_last_error());
		return 1;
	}
	struct vale_io_opts o = {0};
	o.flags = VIO_F_VHOST_OFFLOADS;
	struct vale_io *io;
	if (vale_io_open(VIO_VHOST, argv[1], &o, &io) < 0) {
		fprintf(stderr, "vale_io_open: %s\n", vale_io_last_error());
		return 1;
	}
	struct vale_fwd *f;
	if (vale_fwd_create(io, p, NULL, &f) < 0 || vale_fwd_start(f) < 0) {
		fprintf(stderr, "forwarder: %s\n", vale_fwd_last_error());
		return 1;
	}
	printf("ready\n");
	char c;
	while (read(0, &c, 1) > 0) {
	}
	static char buf[16384];
	vale_io_vhost_json(io, buf, sizeof buf);
	printf("%s\n", buf);
	vale_fwd_stop(f);
	vale_fwd_destroy(f);
	vale_io_close(io);
	vale_close(p);
	return 0;
}
