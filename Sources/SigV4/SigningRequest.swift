/// The parts of an HTTP request that SigV4 covers.
public struct SigningRequest: Sendable {
    /// The HTTP method, as sent (`GET`, `POST`).
    public var method: String
    /// The path exactly as sent on the wire (already percent-encoded), e.g. `/`. The signer
    /// normalizes it and encodes it once more, which is what SigV4 prescribes for every
    /// service except S3.
    public var path: String
    /// Query parameters, DECODED (`("Param", "a b")`, not `a%20b`), in any order. The signer
    /// encodes them itself; whoever builds the URL must encode them with
    /// `URIEncoding.encode(_:encodeSlash: true)` so the wire matches what was signed.
    public var query: [(name: String, value: String)]
    /// Headers in the order they will be sent; names in any case. Include `Host` (with
    /// `:port` when not the scheme's default): the signer never invents one.
    public var headers: [(name: String, value: String)]
    /// The exact body bytes; their SHA-256 is the payload hash.
    public var body: [UInt8]

    public init(
        method: String,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }
}
