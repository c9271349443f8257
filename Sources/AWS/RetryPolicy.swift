import HTTP

/// The AWS SDKs' "standard" retry mode: 3 attempts, full-jitter exponential backoff capped at 20 s,
/// on throttling, transient and transport errors only.
public struct RetryPolicy: Sendable {
    public var maxAttempts = 3
    public var maxBackoffMilliseconds: Int64 = 20_000
    public var baseMilliseconds: Int64 = 1_000

    public init() {}

    static let throttlingCodes: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", "Throttled",
    ]
    static let transientCodes: Set<String> = [
        "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure", "InternalServiceError",
        "InternalServerError", "ServiceUnavailable",
    ]
    static let transientStatuses: Set<Int> = [500, 502, 503, 504, 429]

    static func isThrottling(_ error: AWSServiceError) -> Bool {
        throttlingCodes.contains(error.code) || error.httpStatus == 429
    }

    public func isRetryable(_ error: AWSServiceError) -> Bool {
        RetryPolicy.throttlingCodes.contains(error.code) || RetryPolicy.transientCodes.contains(error.code)
            || RetryPolicy.transientStatuses.contains(error.httpStatus)
    }

    /// Delay before attempt `attempt + 1` (attempt counts from 1), given a random value in [0, 1).
    public func backoffMilliseconds(afterAttempt attempt: Int, random: Double) -> Int64 {
        let ceiling = min(baseMilliseconds << Int64(min(attempt - 1, 30)), maxBackoffMilliseconds)
        return Int64(random * Double(ceiling))
    }
}
