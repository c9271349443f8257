/// Percent-encoding as SigV4 defines it (the AWS "UriEncode" function).
public enum URIEncoding {
    /// Keeps the RFC 3986 unreserved characters `A-Z a-z 0-9 - . _ ~` (and `/` when
    /// `encodeSlash` is false); every other UTF-8 byte becomes `%XX` with uppercase hex.
    /// Note there is no special case for `%`: an already-encoded string is encoded again.
    public static func encode(_ s: String, encodeSlash: Bool) -> String {
        percentEncode(s, spaceAsPlus: false) { isUnreserved($0) || ($0 == UInt8(ascii: "/") && !encodeSlash) }
    }

    /// `application/x-www-form-urlencoded` as Python's `urllib.parse.quote_plus` (and so botocore's
    /// Query protocol bodies) writes it: the same, except that a space becomes `+`.
    public static func formEncode(_ s: String) -> String {
        percentEncode(s, spaceAsPlus: true, kept: isUnreserved)
    }

    private static func percentEncode(_ s: String, spaceAsPlus: Bool, kept: (UInt8) -> Bool) -> String {
        if s.utf8.allSatisfy(kept) { return s }   // the usual case: nothing to encode, nothing to copy
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count)
        for byte in s.utf8 {
            if kept(byte) {
                out.append(byte)
            } else if spaceAsPlus && byte == UInt8(ascii: " ") {
                out.append(UInt8(ascii: "+"))
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
