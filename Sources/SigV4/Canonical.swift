/// The pure pieces of the canonical request, one function per line of it.
enum Canonical {
    /// Headers that are never signed, whatever the caller passes. All are headers that
    /// something between the signer and AWS may add, drop or rewrite after signing (libcurl
    /// adds `Expect` and computes `Content-Length` and `Transfer-Encoding` itself; proxies
    /// touch `Connection`, `Accept-Encoding` and `User-Agent`; Lambda and X-Ray set
    /// `X-Amzn-Trace-Id`), and a signed header that changes in transit breaks the signature.
    /// `Authorization` is the signature itself. The official test suite only uses headers
    /// outside this list (it signs any other header, e.g. `My-Header1`), so it passes with it;
    /// `Content-Length` is left out as botocore and the Go SDK do, since the body is already
    /// covered by the payload hash.
    static let neverSigned: Set<String> = [
        "authorization", "user-agent", "expect", "connection", "transfer-encoding",
        "content-length", "accept-encoding", "x-amzn-trace-id",
    ]

    /// The canonical URI: `path` normalized, then URI-encoded once (slashes kept).
    static func uri(_ path: String) -> String {
        URIEncoding.encode(normalizedPath(path), encodeSlash: false)
    }

    /// Removes empty, `.` and `..` segments (so `//` collapses) and keeps a trailing slash,
    /// as the suite's `normalize-path` cases and botocore do. The result always starts with
    /// `/`. (S3 must not be normalized; this signer is never used for S3.)
    static func normalizedPath(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/") {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(segment)
            }
        }
        let joined = "/" + segments.joined(separator: "/")
        return path.hasSuffix("/") && !segments.isEmpty ? joined + "/" : joined
    }

    /// `name=value` pairs, both URI-encoded (slash included), sorted by encoded name then
    /// encoded value, joined with `&`. An empty value still gets its `=`.
    static func query(_ parameters: [(name: String, value: String)]) -> String {
        parameters
            .map { (name: URIEncoding.encode($0.name, encodeSlash: true),
                    value: URIEncoding.encode($0.value, encodeSlash: true)) }
            .sorted { $0.name != $1.name ? bytewiseLess($0.name, $1.name) : bytewiseLess($0.value, $1.value) }
            .map { "\($0.name)=\($0.value)" }
            .joined(separator: "&")
    }

    /// The canonical headers block (`name:value\n` per signed header) and the matching
    /// `SignedHeaders` list. Names are lowercased and sorted; a name given several times
    /// becomes one line with its values joined by `,` in order of appearance.
    static func headers(_ headers: [(name: String, value: String)]) -> (block: String, signed: String) {
        var values: [String: [String]] = [:]
        for header in headers {
            let name = lowercased(header.name)
            guard !neverSigned.contains(name) else { continue }
            values[name, default: []].append(trimAll(header.value))
        }
        let names = values.keys.sorted(by: bytewiseLess)
        var block = ""
        for name in names {
            block += name
            block += ":"
            block += values[name]!.joined(separator: ",")
            block += "\n"
        }
        return (block, names.joined(separator: ";"))
    }

    /// A header name in lowercase. Names are ASCII tokens (RFC 9110), lowercased byte by byte;
    /// anything else goes through Unicode lowercasing.
    static func lowercased(_ name: String) -> String {
        guard name.utf8.allSatisfy({ $0 < 0x80 }) else { return name.lowercased() }
        return String(decoding: name.utf8.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Trims leading and trailing blanks and collapses inner runs of blanks to one space
    /// (the spec's "Trimall"; the suite's `get-header-value-trim` does it inside quotes too).
    /// Works on UTF-8 bytes: space and tab never occur inside a multi-byte character.
    static func trimAll(_ value: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        var blankPending = false
        for byte in value.utf8 {
            if byte == 0x20 || byte == 0x09 {
                blankPending = !out.isEmpty
                continue
            }
            if blankPending {
                out.append(0x20)
                blankPending = false
            }
            out.append(byte)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The spec sorts by character code: compare UTF-8 bytes, not Swift's Unicode ordering.
    static func bytewiseLess(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}
