-- POST a body of @SIZE@ bytes on every request (keep-alive).
wrk.method = "POST"
wrk.body = string.rep("x", @SIZE@)
wrk.headers["Content-Type"] = "application/octet-stream"
