// An experiment, not product code: how much of a proxy's per-request CPU does
// the system-call interface itself cost? Two bare TCP forwarders with the same
// behaviour, one on edge-triggered epoll + read/send (ingressd's event loop),
// one on io_uring (recv/send submitted in batches, one io_uring_enter per loop
// turn). Each accepted client connection gets its own upstream connection and
// bytes are relayed both ways; nothing is parsed. wrk → forwarder → nginx keeps
// both hops keep-alive, so the difference in CPU per request between the two is
// what io_uring could save ingressd (bench/experiments/README.md).
//
//   forward epoll|uring LISTEN_PORT UPSTREAM_PORT
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#ifndef NO_URING
#include <liburing.h>
#endif
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr size_t kBuf = 16 * 1024;

int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4096) != 0) {
    perror("listen");
    exit(1);
  }
  return fd;
}

int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    perror("connect");
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// ---------------------------------------------------------------- epoll

struct Side {
  int fd;
  Side* peer;
};

int run_epoll(int lfd, int up_port) {
  int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listener
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  static char buf[kBuf];
  epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; ++i) {
      auto* s = static_cast<Side*>(evs[i].data.ptr);
      if (!s) {
        int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
        if (c < 0) continue;
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int u = connect_to(up_port);
        if (u < 0) {
          close(c);
          continue;
        }
        fcntl(u, F_SETFL, O_NONBLOCK);
        auto* a = new Side{c, nullptr};
        auto* b = new Side{u, a};
        a->peer = b;
        for (Side* x : {a, b}) {
          epoll_event e{};
          e.events = EPOLLIN | EPOLLET | EPOLLRDHUP;
          e.data.ptr = x;
          epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &e);
        }
        continue;
      }
      for (;;) {
        ssize_t r = read(s->fd, buf, sizeof buf);
        if (r > 0) {
          // Small messages: the other side's socket buffer takes them whole.
          if (send(s->peer->fd, buf, static_cast<size_t>(r), MSG_NOSIGNAL) != r) goto dead;
          if (static_cast<size_t>(r) < sizeof buf) break;  // drained (edge-triggered)
          continue;
        }
        if (r < 0 && errno == EAGAIN) break;
      dead:
        close(s->fd);
        close(s->peer->fd);
        delete s->peer;
        delete s;
        break;
      }
    }
  }
}

// ---------------------------------------------------------------- io_uring
#ifndef NO_URING

struct Dir {  // one direction: recv from `from`, send to `to`
  int from, to;
  char buf[kBuf];
  bool sending;
  Dir* other;
};

void queue_recv(io_uring& ring, Dir* d) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_recv(sqe, d->from, d->buf, kBuf, 0);
  d->sending = false;
  io_uring_sqe_set_data(sqe, d);
}

void queue_send(io_uring& ring, Dir* d, unsigned len) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_send(sqe, d->to, d->buf, len, MSG_NOSIGNAL);
  d->sending = true;
  io_uring_sqe_set_data(sqe, d);
}

int run_uring(int lfd, int up_port) {
  io_uring ring;
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
    std::memset(&p, 0, sizeof p);
    if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
      perror("io_uring_queue_init");
      return 1;
    }
    fprintf(stderr, "io_uring without DEFER_TASKRUN\n");
  }
  static int accept_tag;
  auto queue_accept = [&] {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_accept(sqe, lfd, nullptr, nullptr, 0);
    io_uring_sqe_set_data(sqe, &accept_tag);
  };
  queue_accept();
  for (;;) {
    io_uring_submit_and_wait(&ring, 1);
    io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      void* tag = io_uring_cqe_get_data(cqe);
      int res = cqe->res;
      if (tag == &accept_tag) {
        queue_accept();
        if (res < 0) continue;
        int one = 1;
        setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int u = connect_to(up_port);
        if (u < 0) {
          close(res);
          continue;
        }
        auto* a = new Dir{res, u, {}, false, nullptr};
        auto* b = new Dir{u, res, {}, false, a};
        a->other = b;
        queue_recv(ring, a);
        queue_recv(ring, b);
        continue;
      }
      auto* d = static_cast<Dir*>(tag);
      if (res <= 0) {  // EOF or error: close both (the other direction's pending recv fails next)
        if (d->other) {
          d->other->other = nullptr;
          shutdown(d->from, SHUT_RDWR);
          shutdown(d->to, SHUT_RDWR);
        } else {
          close(d->from);
          close(d->to);
        }
        delete d;
        continue;
      }
      if (d->sending) queue_recv(ring, d);  // small messages: a send completes whole
      else queue_send(ring, d, static_cast<unsigned>(res));
    }
    io_uring_cq_advance(&ring, seen);
  }
}

#endif  // NO_URING

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: forward epoll|uring LISTEN_PORT UPSTREAM_PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = listen_on(atoi(argv[2]));
  int up = atoi(argv[3]);
  if (strcmp(argv[1], "epoll") == 0) return run_epoll(lfd, up);
#ifndef NO_URING
  if (strcmp(argv[1], "uring") == 0) return run_uring(lfd, up);
#endif
  fprintf(stderr, "unknown or unavailable mode %s\n", argv[1]);
  return 2;
}
