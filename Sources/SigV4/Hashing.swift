import CCrypto

/// The two primitives SigV4 needs, from libcrypto.
///
/// OpenSSL 3's one-shot `SHA256()` and `HMAC()` look the algorithm up in the provider tables on
/// every call, which cost more than hashing a request (callgrind: two thirds of a signature's
/// instructions). So SHA-256 is fetched once, and HMAC (RFC 2104) is built on it here.
public enum Hashing {
    static let digestLength = Int(SHA256_DIGEST_LENGTH)
    static let blockLength = 64

    /// libcrypto's SHA-256 implementation, fetched once; immutable and thread-safe once fetched.
    nonisolated(unsafe) private static let sha256Algorithm: OpaquePointer = {
        guard let algorithm = EVP_MD_fetch(nil, "SHA256", nil) else { fatalError("libcrypto has no SHA-256") }
        return algorithm
    }()

    /// SHA-256 of the concatenated `parts` (HMAC hashes a pad and a message without joining them).
    static func sha256(_ parts: [UInt8]...) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }
        defer { EVP_MD_CTX_free(context) }
        var digest = [UInt8](repeating: 0, count: digestLength)
        var length: UInt32 = 0
        var ok = EVP_DigestInit_ex2(context, sha256Algorithm, nil) == 1
        for part in parts {
            ok = ok && part.withUnsafeBufferPointer { EVP_DigestUpdate(context, $0.baseAddress, $0.count) } == 1
        }
        ok = ok && EVP_DigestFinal_ex(context, &digest, &length) == 1
        precondition(ok && Int(length) == digestLength, "SHA-256 failed in libcrypto")
        return digest
    }

    /// SHA-256 of `bytes` as lowercase hex (the form SigV4 uses for payload and request hashes).
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        hex(sha256(bytes))
    }

    /// HMAC-SHA256 of `data` under `key`, as raw bytes (SigV4 chains raw HMACs to derive the key).
    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var block = key.count > blockLength ? sha256(key) : key
        block += [UInt8](repeating: 0, count: blockLength - block.count)
        let inner = sha256(block.map { $0 ^ 0x36 }, data)
        return sha256(block.map { $0 ^ 0x5c }, inner)
    }
    /// Lowercase hexadecimal, two digits per byte.
    static func hex(_ bytes: [UInt8]) -> String {
        func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x57 + nibble }
        return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (i, byte) in bytes.enumerated() {
                out[2 * i] = digit(byte >> 4)
                out[2 * i + 1] = digit(byte & 0x0f)
            }
            return bytes.count * 2
        }
    }
}
