import HTTP

/// An error answered by an AWS service.
public struct AWSServiceError: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    public let httpStatus: Int
    public let requestId: String?

    public init(code: String, message: String, httpStatus: Int, requestId: String?) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.requestId = requestId
    }

    public var description: String {
        "\(code) (HTTP \(httpStatus)\(requestId.map { ", request \($0)" } ?? "")): \(message)"
    }
}

/// Why an AWS call failed. Descriptions never carry request bodies: those may hold a password.
public enum AWSError: Error, Equatable, CustomStringConvertible, Sendable {
    case service(operation: String, AWSServiceError)
    case transport(operation: String, TransportError)
    /// Not (re)tried because the invocation would end first.
    case deadline(operation: String)
    /// The service answered 2xx with something we cannot read.
    case malformedResponse(operation: String, reason: String)

    public var serviceError: AWSServiceError? {
        if case .service(_, let error) = self { return error }
        return nil
    }

    public func isServiceError(_ code: String) -> Bool { serviceError?.code == code }

    /// Whether the service refused the call for its request rate (an account-wide quota: the call
    /// did nothing, and says nothing about what it asked for).
    public var isThrottling: Bool { serviceError.map(RetryPolicy.isThrottling) ?? false }

    public var description: String {
        switch self {
        case let .service(operation, error): return "\(operation) failed: \(error)"
        case let .transport(operation, error): return "\(operation) failed: \(error)"
        case let .deadline(operation): return "\(operation) not attempted: the invocation deadline is too close"
        case let .malformedResponse(operation, reason): return "\(operation) answered something unreadable: \(reason)"
        }
    }
}
