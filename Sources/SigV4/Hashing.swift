import CCrypto

/// The two primitives SigV4 needs, from libcrypto.
public enum Hashing {
    static let digestLength = Int(SHA256_DIGEST_LENGTH)

    /// SHA-256 of `bytes` as lowercase hex (the form SigV4 uses for payload and request hashes).
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: digestLength)
        bytes.withUnsafeBufferPointer { input in
            _ = SHA256(input.baseAddress, input.count, &digest)
        }
        return hex(digest)
    }

    /// HMAC-SHA256 of `data` under `key`, as raw bytes (SigV4 chains raw HMACs to derive the key).
    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: digestLength)
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                _ = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, &mac, &length)
            }
        }
        precondition(Int(length) == digestLength, "HMAC-SHA256 failed in libcrypto")
        return mac
    }

    /// Lowercase hexadecimal, two digits per byte.
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
