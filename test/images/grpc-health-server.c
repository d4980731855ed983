/*
 * A grpc.health.v1 server for the test images, just enough HTTP/2 (cleartext, "h2c" with prior knowledge, as
 * gRPC clients and the kubelet's gRPC probe speak it) for unary Health/Check calls.
 *
 *   grpc-health-server PORT STATUS_DIR
 *
 * The status of service S is read from the file STATUS_DIR/S at each call (the empty service, the server as a
 * whole, from STATUS_DIR/default): "SERVING", "NOT_SERVING", "UNKNOWN" or "SERVICE_UNKNOWN". A missing file
 * answers gRPC status NOT_FOUND "unknown service", as grpc-go's health server does. A test flips the answer
 * by writing the file (through CRI ExecSync), with no restart and no extra process in the pod.
 *
 * Why C and not a real gRPC server: the machine has no Go toolchain and no internet beyond npm and Debian's
 * packages; no Debian package ships a static grpc health *server* whose answer can be flipped; and copying
 * Node (dynamically linked, ~100 MB with its libraries) plus @grpc/grpc-js into a busybox image is far more
 * moving parts than one static binary built with the gcc the machine has. The HTTP/2 subset is small and fixed:
 * no HPACK decoding is needed (every request on this server is treated as Health/Check and the request
 * headers are skipped), responses use static-table and literal header fields without Huffman coding, and
 * flow control never matters for messages of a few bytes. Each connection runs in its own forked process
 * (bounded by an alarm), so a stuck client never blocks the next probe.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_DATA 0
#define FRAME_HEADERS 1
#define FRAME_SETTINGS 4
#define FRAME_PING 6
#define FRAME_GOAWAY 7
#define FLAG_ACK 0x1
#define FLAG_END_STREAM 0x1
#define FLAG_END_HEADERS 0x4
#define FLAG_PADDED 0x8
#define MAX_FRAME 16384
#define MAX_STREAMS 16
#define MAX_MESSAGE 1024

static const char *status_dir;

static int read_full(int fd, unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const unsigned char *buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t w = write(fd, buf + put, n - put);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    put += (size_t)w;
  }
  return 0;
}

static int send_frame(int fd, int type, int flags, unsigned stream, const unsigned char *payload, size_t len) {
  unsigned char out[9 + 256];
  if (len > sizeof out - 9) return -1;
  out[0] = (unsigned char)(len >> 16);
  out[1] = (unsigned char)(len >> 8);
  out[2] = (unsigned char)len;
  out[3] = (unsigned char)type;
  out[4] = (unsigned char)flags;
  out[5] = (unsigned char)((stream >> 24) & 0x7f);
  out[6] = (unsigned char)(stream >> 16);
  out[7] = (unsigned char)(stream >> 8);
  out[8] = (unsigned char)stream;
  if (len > 0) memcpy(out + 9, payload, len);
  return write_full(fd, out, 9 + len);
}

/* HPACK "literal header field without indexing, new name", no Huffman coding (names and values < 127). */
static size_t literal(unsigned char *at, const char *name, const char *value) {
  size_t n = strlen(name), v = strlen(value), i = 0;
  at[i++] = 0x00;
  at[i++] = (unsigned char)n;
  memcpy(at + i, name, n);
  i += n;
  at[i++] = (unsigned char)v;
  memcpy(at + i, value, v);
  return i + v;
}

/* The serving status of `service` from its file: 0-3, or -1 when there is no such file (unknown service). */
static int serving_status(const char *service) {
  char path[512], text[64];
  if (strchr(service, '/') != NULL || strcmp(service, ".") == 0 || strcmp(service, "..") == 0) return -1;
  snprintf(path, sizeof path, "%s/%s", status_dir, service[0] == '\0' ? "default" : service);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  text[strcspn(text, " \t\r\n")] = '\0';
  if (strcmp(text, "SERVING") == 0) return 1;
  if (strcmp(text, "NOT_SERVING") == 0) return 2;
  if (strcmp(text, "SERVICE_UNKNOWN") == 0) return 3;
  return 0; /* UNKNOWN, and anything else */
}

/* HealthCheckRequest { string service = 1; } after the 5-byte gRPC message prefix. */
static void request_service(const unsigned char *msg, size_t len, char *service, size_t size) {
  service[0] = '\0';
  if (len < 5) return;
  size_t body = ((size_t)msg[1] << 24) | ((size_t)msg[2] << 16) | ((size_t)msg[3] << 8) | msg[4];
  const unsigned char *p = msg + 5, *end = msg + 5 + (body < len - 5 ? body : len - 5);
  while (p < end) {
    unsigned key = *p++;
    if ((key & 7) != 2) return; /* only the one string field is expected */
    size_t n = 0;
    int shift = 0;
    while (p < end && shift < 28) {
      n |= (size_t)(*p & 0x7f) << shift;
      shift += 7;
      if ((*p++ & 0x80) == 0) break;
    }
    if (n > (size_t)(end - p)) return;
    if ((key >> 3) == 1 && n < size) {
      memcpy(service, p, n);
      service[n] = '\0';
    }
    p += n;
  }
}

static int respond(int fd, unsigned stream, const unsigned char *msg, size_t len) {
  char service[256];
  unsigned char block[256];
  size_t b = 0;
  request_service(msg, len, service, sizeof service);
  int status = serving_status(service);
  block[b++] = 0x88; /* :status: 200, static table index 8 */
  b += literal(block + b, "content-type", "application/grpc");
  if (status < 0) {
    /* Trailers-only response: the call fails with NOT_FOUND. */
    b += literal(block + b, "grpc-status", "5");
    b += literal(block + b, "grpc-message", "unknown service");
    return send_frame(fd, FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, stream, block, b);
  }
  if (send_frame(fd, FRAME_HEADERS, FLAG_END_HEADERS, stream, block, b) < 0) return -1;
  /* HealthCheckResponse { ServingStatus status = 1; } in a gRPC message (uncompressed, 2 bytes). */
  unsigned char data[] = {0, 0, 0, 0, 2, 0x08, (unsigned char)status};
  if (send_frame(fd, FRAME_DATA, 0, stream, data, sizeof data) < 0) return -1;
  b = literal(block, "grpc-status", "0");
  return send_frame(fd, FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, stream, block, b);
}

struct call {
  unsigned stream;
  size_t len;
  unsigned char msg[MAX_MESSAGE];
};

static struct call *call_for(struct call *calls, unsigned stream) {
  for (int i = 0; i < MAX_STREAMS; i++)
    if (calls[i].stream == stream) return &calls[i];
  for (int i = 0; i < MAX_STREAMS; i++)
    if (calls[i].stream == 0) {
      calls[i].stream = stream;
      calls[i].len = 0;
      return &calls[i];
    }
  return NULL;
}

static void serve(int fd) {
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  unsigned char head[9], payload[MAX_FRAME];
  struct call calls[MAX_STREAMS];
  memset(calls, 0, sizeof calls);
  if (read_full(fd, payload, sizeof preface - 1) < 0 || memcmp(payload, preface, sizeof preface - 1) != 0) return;
  if (send_frame(fd, FRAME_SETTINGS, 0, 0, NULL, 0) < 0) return;
  for (;;) {
    if (read_full(fd, head, 9) < 0) return;
    size_t len = ((size_t)head[0] << 16) | ((size_t)head[1] << 8) | head[2];
    int type = head[3], flags = head[4];
    unsigned stream = ((unsigned)(head[5] & 0x7f) << 24) | ((unsigned)head[6] << 16) | ((unsigned)head[7] << 8) | head[8];
    if (len > MAX_FRAME || read_full(fd, payload, len) < 0) return;
    switch (type) {
      case FRAME_SETTINGS:
        if (!(flags & FLAG_ACK) && send_frame(fd, FRAME_SETTINGS, FLAG_ACK, 0, NULL, 0) < 0) return;
        break;
      case FRAME_PING:
        if (!(flags & FLAG_ACK) && len == 8 && send_frame(fd, FRAME_PING, FLAG_ACK, 0, payload, 8) < 0) return;
        break;
      case FRAME_GOAWAY:
        return;
      case FRAME_HEADERS:
      case FRAME_DATA: {
        if (stream == 0) return;
        struct call *c = call_for(calls, stream);
        if (c == NULL) return;
        if (type == FRAME_DATA) {
          size_t at = 0, n = len;
          if (flags & FLAG_PADDED) {
            if (len < 1 || payload[0] >= len) return;
            at = 1;
            n = len - 1 - payload[0];
          }
          if (c->len + n > MAX_MESSAGE) return;
          memcpy(c->msg + c->len, payload + at, n);
          c->len += n;
        }
        if (flags & FLAG_END_STREAM) {
          if (respond(fd, stream, c->msg, c->len) < 0) return;
          c->stream = 0;
        }
        break;
      }
      default: /* WINDOW_UPDATE, PRIORITY, RST_STREAM, CONTINUATION: nothing to do for tiny unary calls */
        break;
    }
  }
}

/* IPv6 and IPv4 on one socket; IPv4 only where the kernel has no IPv6. */
static int listen_on(unsigned short port) {
  int one = 1, zero = 0;
  int ls = socket(AF_INET6, SOCK_STREAM, 0);
  if (ls >= 0) {
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof a6);
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_any;
    a6.sin6_port = htons(port);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(ls, (struct sockaddr *)&a6, sizeof a6) == 0 && listen(ls, 64) == 0) return ls;
    close(ls);
  }
  ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) return -1;
  struct sockaddr_in a4;
  memset(&a4, 0, sizeof a4);
  a4.sin_family = AF_INET;
  a4.sin_addr.s_addr = htonl(INADDR_ANY);
  a4.sin_port = htons(port);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&a4, sizeof a4) < 0 || listen(ls, 64) < 0) return -1;
  return ls;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s PORT STATUS_DIR\n", argv[0]);
    return 2;
  }
  status_dir = argv[2];
  signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
  signal(SIGPIPE, SIG_IGN);
  int ls = listen_on((unsigned short)atoi(argv[1]));
  if (ls < 0) {
    perror("grpc-health-server: listen");
    return 1;
  }
  fprintf(stderr, "grpc-health-server: serving grpc.health.v1 on :%s, statuses in %s\n", argv[1], status_dir);
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("grpc-health-server: accept");
      return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(ls);
      alarm(30); /* a connection never outlives this */
      serve(fd);
      _exit(0);
    }
    close(fd);
  }
}
