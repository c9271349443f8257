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
        if path == "/" { return path }   // every JSON and Query protocol request
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
        if parameters.isEmpty { return "" }
        return parameters
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
        var signedHeaders: [(name: String, value: String, position: Int)] = []
        signedHeaders.reserveCapacity(headers.count)
        for (position, header) in headers.enumerated() {
            let name = lowercased(header.name)
            guard !neverSigned.contains(name) else { continue }
            signedHeaders.append((name, trimAll(header.value), position))
        }
        // By name, then by position: values of a repeated name stay in order of appearance.
        signedHeaders.sort { $0.name != $1.name ? bytewiseLess($0.name, $1.name) : $0.position < $1.position }
        var block: [UInt8] = []
        var signed: [UInt8] = []
        block.reserveCapacity(signedHeaders.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 2 })
        for (index, header) in signedHeaders.enumerated() {
            if index > 0, signedHeaders[index - 1].name == header.name {
                block.removeLast()   // the previous line's "\n": one line per name
                block.append(UInt8(ascii: ","))
            } else {
                if !signed.isEmpty { signed.append(UInt8(ascii: ";")) }
                signed += header.name.utf8
                block += header.name.utf8
                block.append(UInt8(ascii: ":"))
            }
            block += header.value.utf8
            block.append(UInt8(ascii: "\n"))
        }
        return (String(decoding: block, as: UTF8.self), String(decoding: signed, as: UTF8.self))
    }

    /// A header name in lowercase. Names are ASCII tokens (RFC 9110), lowercased byte by byte;
    /// anything else goes through Unicode lowercasing.
    static func lowercased(_ name: String) -> String {
        guard name.utf8.allSatisfy({ $0 < 0x80 }) else { return name.lowercased() }
        let bytes = name.utf8
        return String(unsafeUninitializedCapacity: bytes.count) { out in
            for (i, byte) in bytes.enumerated() { out[i] = (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }
            return bytes.count
        }
    }

    /// Whether header `name` is `lowercaseName` in any case (without building a lowercased copy).
    static func isNamed(_ name: String, _ lowercaseName: StaticString) -> Bool {
        let target = UnsafeBufferPointer(start: lowercaseName.utf8Start, count: lowercaseName.utf8CodeUnitCount)
        return name.utf8.count == target.count
            && zip(name.utf8, target).allSatisfy { (0x41...0x5A).contains($0) ? $0 | 0x20 == $1 : $0 == $1 }
    }

    /// Trims leading and trailing blanks and collapses inner runs of blanks to one space
    /// (the spec's "Trimall"; the suite's `get-header-value-trim` does it inside quotes too).
    /// Works on UTF-8 bytes: space and tab never occur inside a multi-byte character.
    static func trimAll(_ value: String) -> String {
        let bytes = value.utf8
        func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
        // Most values have nothing to trim: keep them as they are.
        var previousBlank = true   // a blank first byte needs trimming too
        var clean = true
        for byte in bytes {
            if isBlank(byte) && (previousBlank || byte == 0x09) { clean = false; break }
            previousBlank = isBlank(byte)
        }
        if clean && !previousBlank || bytes.isEmpty { return value }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var blankPending = false
        for byte in bytes {
            if isBlank(byte) {
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
