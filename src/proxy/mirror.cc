#include "proxy/mirror.h"

#include <cerrno>

#include "proxy/socket_io.h"

namespace ingressd {

bool MirrorRequest::start(const routing::EndpointAddr& ep, std::string_view head, std::string_view body, bool is_head,
                          int64_t deadline) {
  int err = 0;
  up_ = w_.acquire_upstream(ep, err);
  if (!up_) return false;
  up_->owner = this;
  up_->progress = w_.now_ms();
  up_->out.append(head.data(), head.size());
  if (!body.empty()) up_->out.append(body.data(), body.size());
  is_head_ = is_head;
  deadline_ = deadline;
  if (!up_->connecting) on_upstream_event();  // a pooled connection is writable now: no event will say so
  return true;
}

void MirrorRequest::on_upstream_event() {
  UpstreamConn* u = up_;
  if (done_ || !u) return;
  if (u->connecting) {
    if (u->error) finish(false, false);
    return;
  }
  if (!u->out.empty() && u->can_write && !write_from(u->fd, u->out, u->can_write)) return finish(false, false);
  // Edge-triggered: read until the socket is drained or the response is whole
  // (what is read is dropped at once, so the buffer never grows).
  for (;;) {
    if (u->can_read && !u->eof) {
      if (!read_into(u->fd, u->in, u->can_read, u->eof, kHigh, u->peer_closed)) return finish(false, false);
    }
    if (consume_response()) return finish(true, keep_alive_ && u->in.empty() && u->out.empty() && !u->eof);
    if (done_) return;
    if (u->eof || u->error) return finish(false, false);
    if (!u->can_read) return;  // the next edge resumes
  }
}

bool MirrorRequest::consume_response() {
  UpstreamConn* u = up_;
  while (!head_done_) {
    if (u->in.empty()) return false;
    http1::ResponseHead& resp = w_.scratch_response();
    http1::ParseError err;
    long n = http1::parse_response_head(u->in.data(), u->in.size(), is_head_, resp, err, w_.cfg.limits);
    if (n < 0) {
      finish(false, false);
      return false;
    }
    if (n == 0) return false;
    u->in.consume(static_cast<size_t>(n));
    if (resp.status < 200) continue;  // 1xx: the final head follows
    head_done_ = true;
    keep_alive_ = resp.keep_alive;
    framing_ = resp.framing;
    remaining_ = resp.content_length;
  }
  switch (framing_) {
    case http1::Framing::None: return true;
    case http1::Framing::Length: {
      size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, u->in.size()));
      u->in.consume(take);
      remaining_ -= take;
      return remaining_ == 0;
    }
    case http1::Framing::Chunked:
      while (!u->in.empty()) {
        auto r = chunked_.feed(u->in.data(), u->in.size());
        u->in.consume(r.consumed);
        if (r.status == http1::ChunkedDecoder::Status::Error) {
          finish(false, false);
          return false;
        }
        if (r.status == http1::ChunkedDecoder::Status::Done) return true;
        if (r.status == http1::ChunkedDecoder::Status::NeedMore) return false;
      }
      return false;
    case http1::Framing::UntilClose:
      u->in.clear();
      keep_alive_ = false;
      return u->eof;
  }
  return false;
}

bool MirrorRequest::expire(int64_t now) {
  if (!done_ && now >= deadline_) finish(false, false);
  return done_;
}

void MirrorRequest::finish(bool ok, bool reusable) {
  if (done_) return;
  done_ = true;
  if (up_) {
    if (ok) w_.release_upstream(up_, reusable);
    else w_.close_upstream(up_);
    up_ = nullptr;
  }
  auto& s = w_.mutable_stats();
  (ok ? s.mirrors_sent : s.mirrors_failed).fetch_add(1, std::memory_order_relaxed);
  w_.mirror_done(this);
}

}  // namespace ingressd
