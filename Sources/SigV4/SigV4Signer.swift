import Synchronization

/// AWS Signature Version 4, header variant, for every service but S3.
///
/// Stateless and free of I/O: the same request, credentials and time always give the same
/// signature. The pipeline is split into public stages (canonical request -> string to sign
/// -> signing key -> signature) so each can be checked against the official test suite on
/// its own. Re-signing (each retry needs a fresh `X-Amz-Date`) is the caller's job: call
/// `sign` again with the new time.
public struct SigV4Signer: Sendable {
    public let credentials: Credentials
    public let region: String
    public let service: String
    /// The signing key of the last day signed for: it depends only on the secret, the day, the
    /// region and the service, so like the AWS SDKs we derive it (four HMACs) once a day, not
    /// once a request.
    private let keyOfTheDay = SigningKeyCache()

    static let algorithm = "AWS4-HMAC-SHA256"

    public init(credentials: Credentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The canonical request for `r` signed at `amzDate`, and its `SignedHeaders` list.
    /// It covers the headers `sign` will send: `r.headers` with `X-Amz-Date: amzDate` and,
    /// for session credentials, `X-Amz-Security-Token` (see `headersToSend`).
    public func canonicalRequest(_ r: SigningRequest, amzDate: String) -> (canonical: String, signedHeaders: String) {
        canonicalRequest(r, sending: headersToSend(r.headers, amzDate: amzDate))
    }

    /// The canonical request for `r` with the headers `sending` (what `headersToSend` gave).
    func canonicalRequest(_ r: SigningRequest, sending: [(name: String, value: String)]) -> (canonical: String, signedHeaders: String) {
        let headers = Canonical.headers(sending)
        let canonical = [
            r.method,
            Canonical.uri(r.path),
            Canonical.query(r.query),
            headers.block,
            headers.signed,
            Hashing.sha256Hex(r.body),
        ].joined(separator: "\n")
        return (canonical, headers.signed)
    }

    /// `AWS4-HMAC-SHA256`, the time, the credential scope and the canonical request's hash.
    public func stringToSign(canonicalRequest: String, amzDate: String) -> String {
        [
            Self.algorithm,
            amzDate,
            scope(date: amzDate.prefix(8)),
            Hashing.sha256Hex(Array(canonicalRequest.utf8)),
        ].joined(separator: "\n")
    }

    /// HMAC chain `"AWS4" + secret` -> date (`yyyyMMdd`) -> region -> service -> `aws4_request`.
    public func signingKey(date: String) -> [UInt8] {
        var key = Array("AWS4\(credentials.secretAccessKey)".utf8)
        for part in [date, region, service, "aws4_request"] {
            key = Hashing.hmacSHA256(key: key, data: Array(part.utf8))
        }
        return key
    }

    /// The signature as lowercase hex; `date` is `yyyyMMdd`.
    public func signature(stringToSign: String, date: String) -> String {
        let key = keyOfTheDay.key(for: date) { signingKey(date: date) }
        return Hashing.hex(Hashing.hmacSHA256(key: key, data: Array(stringToSign.utf8)))
    }

    /// The headers to send: `headersToSend(r.headers, ...)` followed by `Authorization`.
    /// `X-Amz-Content-Sha256` is not added: only S3 requires it.
    public func sign(_ r: SigningRequest, at time: AmzTime) -> [(name: String, value: String)] {
        let headers = headersToSend(r.headers, amzDate: time.amzDate)
        let (canonical, signedHeaders) = canonicalRequest(r, sending: headers)
        let toSign = stringToSign(canonicalRequest: canonical, amzDate: time.amzDate)
        let authorization = Self.algorithm
            + " Credential=\(credentials.accessKeyId)/\(scope(date: time.date))"
            + ", SignedHeaders=\(signedHeaders)"
            + ", Signature=\(signature(stringToSign: toSign, date: String(time.date)))"
        return headers + [("Authorization", authorization)]
    }

    /// `headers` without any previous signature or date (a retry passes the request it sent
    /// before), plus `X-Amz-Date` and, for session credentials, `X-Amz-Security-Token`, which
    /// AWS requires to be signed. A token already in `headers` is kept when the credentials
    /// carry none, and replaced when they do.
    func headersToSend(_ headers: [(name: String, value: String)], amzDate: String) -> [(name: String, value: String)] {
        var result = headers.filter {
            !(Canonical.isNamed($0.name, "authorization") || Canonical.isNamed($0.name, "x-amz-date")
              || (credentials.sessionToken != nil && Canonical.isNamed($0.name, "x-amz-security-token")))
        }
        result.append((name: "X-Amz-Date", value: amzDate))
        if let token = credentials.sessionToken {
            result.append((name: "X-Amz-Security-Token", value: token))
        }
        return result
    }

    /// `yyyyMMdd/region/service/aws4_request`.
    func scope(date: Substring) -> String {
        "\(date)/\(region)/\(service)/aws4_request"
    }
}

/// One day's signing key, shared by the copies of a signer.
final class SigningKeyCache: Sendable {
    private let entry = Mutex<(date: String, key: [UInt8])?>(nil)

    func key(for date: String, derive: () -> [UInt8]) -> [UInt8] {
        entry.withLock { entry in
            if let entry, entry.date == date { return entry.key }
            let key = derive()
            entry = (date, key)
            return key
        }
    }
}
