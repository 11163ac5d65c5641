//! HTTP/1.1 framing for KMS exchanges over kept-alive connections.
//!
//! libmongocrypt writes every HTTP request with `Connection: close`, so each request
//! would cost a TCP and a TLS handshake: three round trips where a reused connection
//! needs one. The header is outside every signature (AWS SigV4 leaves `Connection` out
//! of its signed and canonical headers; Azure and GCP send a bearer token), so
//! [`keep_alive`] removes it from the head and nothing signed changes. A reply on a
//! kept-alive connection no longer ends at EOF: [`frame`] says where it ends (by
//! `Content-Length` or chunked encoding) and whether the server lets the connection
//! be used again.

/// Where an HTTP reply ends, judged from the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Partial,
    /// The reply is the first `len` bytes; `reusable`: the connection may carry the
    /// next request (HTTP/1.1, no `Connection: close`).
    Complete {
        /// Length of the whole reply, head and body.
        len: usize,
        /// Whether the connection may be used again.
        reusable: bool,
    },
    /// No length and not chunked: the reply ends when the server closes.
    UntilClose,
    /// Not an HTTP reply httparse can read: libmongocrypt's parser will say why.
    Invalid,
}

/// The request with its `Connection: close` header line removed (the head only; the
/// body is never touched). Any other request is returned as it is.
pub fn keep_alive(request: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let Some(head_end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return request.into();
    };
    let head = &request[..head_end + 2];
    let mut out = Vec::with_capacity(request.len());
    let mut removed = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        if !removed
            && name.eq_ignore_ascii_case(b"connection")
            && value.trim_ascii().eq_ignore_ascii_case(b"close")
        {
            removed = true;
            continue;
        }
        out.extend_from_slice(line);
    }
    if !removed {
        return request.into();
    }
    out.extend_from_slice(&request[head_end + 2..]);
    out.into()
}

/// Where the reply in `buf` ends (see [`Frame`]).
pub fn frame(buf: &[u8]) -> Frame {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Frame::Partial,
        Err(_) => return Frame::Invalid,
    };
    let headers: &[httparse::Header<'_>] = head.headers;
    let header = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let closes = header("connection").any(|v| v.trim_ascii().eq_ignore_ascii_case(b"close"));
    let reusable = head.version == Some(1) && !closes;
    let chunked = header("transfer-encoding").any(|v| {
        v.rsplit(|&b| b == b',')
            .next()
            .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    });
    if chunked {
        return chunked_end(buf, head_len).map_or(Frame::Partial, |end| match end {
            Some(len) => Frame::Complete { len, reusable },
            None => Frame::Invalid,
        });
    }
    let lengths: Vec<Option<usize>> = header("content-length")
        .map(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
        .collect();
    match lengths.as_slice() {
        [] if head.code.is_some_and(|c| c == 204 || c == 304 || c < 200) => Frame::Complete {
            len: head_len,
            reusable,
        },
        [] => Frame::UntilClose,
        [Some(n), rest @ ..] if rest.iter().all(|m| *m == Some(*n)) => {
            match head_len.checked_add(*n) {
                Some(len) if buf.len() >= len => Frame::Complete { len, reusable },
                Some(_) => Frame::Partial,
                None => Frame::Invalid,
            }
        }
        _ => Frame::Invalid,
    }
}

/// The end of a chunked body starting at `start`: `None` while incomplete,
/// `Some(None)` when malformed, `Some(Some(len))` at the end of the trailers.
fn chunked_end(buf: &[u8], start: usize) -> Option<Option<usize>> {
    let mut at = start;
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(c)) => c,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => return Some(None),
        };
        at += size_len;
        if size == 0 {
            // Trailers (normally none), each ending in CRLF, then an empty line.
            loop {
                let rest = &buf[at..];
                let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
                at += line_end + 2;
                if line_end == 0 {
                    return Some(Some(at));
                }
            }
        }
        let Some(data_end) = usize::try_from(size).ok().and_then(|s| at.checked_add(s)) else {
            return Some(None);
        };
        let next = data_end.checked_add(2)?;
        if buf.len() < next {
            return None;
        }
        if &buf[data_end..next] != b"\r\n" {
            return Some(None);
        }
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &[u8] = b"POST / HTTP/1.1\r\nHost: kms.us-east-1.amazonaws.com\r\nX-Amz-Target: TrentService.Encrypt\r\nContent-Type: application/x-amz-json-1.1\r\nConnection: close\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIA/20261203/us-east-1/kms/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target, Signature=ab\r\nContent-Length: 22\r\n\r\n{\"Connection\": close}\n";

    #[test]
    fn only_the_connection_close_header_line_is_removed() {
        let out = keep_alive(SIGNED);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(!text.contains("Connection: close\r\n"));
        assert!(
            text.ends_with("\r\n\r\n{\"Connection\": close}\n"),
            "the body is untouched"
        );
        assert_eq!(out.len(), SIGNED.len() - "Connection: close\r\n".len());
        let mut expected = SIGNED.to_vec();
        let at = SIGNED
            .windows(19)
            .position(|w| w == b"Connection: close\r\n")
            .unwrap();
        expected.drain(at..at + 19);
        assert_eq!(&out[..], &expected[..]);
    }

    #[test]
    fn a_request_without_the_header_or_without_a_head_is_left_alone() {
        let plain = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(&keep_alive(plain)[..], &plain[..]);
        let kmip = [0x42u8, 0x00, 0x78, 0x01, 0, 0, 0, 8];
        assert_eq!(&keep_alive(&kmip)[..], &kmip[..]);
        let keep = b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n";
        assert_eq!(&keep_alive(keep)[..], &keep[..]);
    }

    #[test]
    fn a_reply_ends_at_its_content_length() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1";
        assert_eq!(
            frame(r),
            Frame::Complete {
                len: 40,
                reusable: true
            }
        );
        assert_eq!(frame(&r[..39]), Frame::Partial);
        assert_eq!(frame(&r[..20]), Frame::Partial);
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            frame(close),
            Frame::Complete {
                len: close.len(),
                reusable: false
            }
        );
        let old = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            frame(old),
            Frame::Complete {
                len: old.len(),
                reusable: false
            }
        );
    }

    #[test]
    fn a_chunked_reply_ends_after_its_last_chunk_and_trailers() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(
            frame(r),
            Frame::Complete {
                len: r.len(),
                reusable: true
            }
        );
        for cut in 45..r.len() {
            assert_eq!(frame(&r[..cut]), Frame::Partial, "cut at {cut}");
        }
        let trailer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(
            frame(trailer),
            Frame::Complete {
                len: trailer.len(),
                reusable: true
            }
        );
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n";
        assert_eq!(frame(bad), Frame::Invalid);
    }

    #[test]
    fn no_length_means_until_close_and_conflicting_lengths_are_invalid() {
        assert_eq!(frame(b"HTTP/1.1 200 OK\r\n\r\n{}"), Frame::UntilClose);
        assert_eq!(
            frame(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
            Frame::Invalid
        );
        assert_eq!(
            frame(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Frame::Invalid
        );
        assert_eq!(frame(b"\x42\x00\x7b"), Frame::Invalid);
        let empty = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            frame(empty),
            Frame::Complete {
                len: empty.len(),
                reusable: true
            }
        );
    }
}

/// Over any bytes: no panic, a complete frame never claims more than was received,
/// and a well-formed reply split anywhere is partial until its last byte.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_frame_within_what_arrived(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Frame::Complete { len, .. } = frame(&bytes) {
                prop_assert!(len <= bytes.len());
            }
            let out = keep_alive(&bytes);
            prop_assert!(out.len() <= bytes.len());
        }

        #[test]
        fn a_reply_is_complete_exactly_at_its_end(body in proptest::collection::vec(any::<u8>(), 0..200),
                                                  chunked in any::<bool>(), split in 1usize..64) {
            let mut reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n".to_vec();
            if chunked {
                reply.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for part in body.chunks(split) {
                    reply.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                    reply.extend_from_slice(part);
                    reply.extend_from_slice(b"\r\n");
                }
                reply.extend_from_slice(b"0\r\n\r\n");
            } else {
                reply.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                reply.extend_from_slice(&body);
            }
            for cut in 0..reply.len() {
                prop_assert_eq!(frame(&reply[..cut]), Frame::Partial);
            }
            let mut next = reply.clone();
            next.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            prop_assert_eq!(frame(&next), Frame::Complete { len: reply.len(), reusable: true });
        }
    }
}
