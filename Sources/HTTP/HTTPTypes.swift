/// One HTTP request as the AWS clients and the Runtime API client build it.
public struct HTTPRequest: Sendable {
    public var method: String
    /// Absolute URL, e.g. `http://127.0.0.1:5000/` or `https://ssm.eu-west-1.amazonaws.com/`.
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Whole-request limit in milliseconds; `nil` waits forever (the Runtime API's `next`).
    public var timeoutMilliseconds: Int?

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
                timeoutMilliseconds: Int? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMilliseconds = timeoutMilliseconds
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header with this name, compared case-insensitively as HTTP requires.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// The request never got an HTTP answer: connection refused or reset, DNS, TLS, timeout.
public struct TransportError: Error, Equatable, CustomStringConvertible, Sendable {
    public let code: Int
    public let message: String
    public let isTimeout: Bool

    public init(code: Int, message: String, isTimeout: Bool) {
        self.code = code
        self.message = message
        self.isTimeout = isTimeout
    }

    public var description: String { "transport error \(code): \(message)" }
}

/// What sends a request: libcurl in the function, a scripted fake in unit tests.
public protocol HTTPClient: AnyObject {
    func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse
}

/// Splits `scheme://host[:port]/path` for signing: the `Host` header value and the path.
public struct URLParts: Equatable, Sendable {
    public let scheme: String
    public let host: String
    public let port: Int?
    public let path: String

    public init?(_ url: String) {
        guard let schemeEnd = url.firstRange(of: "://") else { return nil }
        scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        path = authorityEnd == rest.endIndex ? "/" : String(rest[authorityEnd...])
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            host = String(authority[..<colon])
            port = p
        } else {
            host = String(authority)
            port = nil
        }
        guard !host.isEmpty else { return nil }
    }

    /// `host` or `host:port` when the port is not the scheme's default: what SigV4 signs.
    public var hostHeader: String {
        guard let port, port != (scheme == "https" ? 443 : 80) else { return host }
        return "\(host):\(port)"
    }
}
