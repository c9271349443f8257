import AWS
import HTTP
import RotatorJSON
import RotatorTestSupport
import Testing

let describeOK = ok(#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf","VersionIdsToStages":{}}"#)

/// Calls DescribeSecret against `harness` and returns the error, if any.
func describe(_ harness: Harness, random: Double = 0.5) throws -> AWSError? {
    let client = try harness.secretsManager(random: random)
    return caught { () throws(AWSError) in _ = try client.describeSecret("s") }
}

@Suite struct RetryTests {
    @Test(arguments: [500, 502, 503, 504, 429])
    func transientStatusIsRetriedUpToThreeAttemptsThenTheLastErrorIsThrown(_ status: Int) throws {
        let harness = Harness([
            // A code no retry list names: only the status makes these retryable.
            jsonError(status, "UnclassifiedFailure", message: "first", requestId: "r1"),
            jsonError(status, "UnclassifiedFailure", message: "second", requestId: "r2"),
            jsonError(status, "UnclassifiedFailure", message: "third", requestId: "r3"),
        ])
        let error = try describe(harness)
        #expect(harness.requests.count == 3)
        #expect(error?.serviceError?.message == "third")
        #expect(error?.serviceError?.requestId == "r3")
        #expect(error?.serviceError?.httpStatus == status)
        #expect(harness.clock.sleeps.count == 2)
    }

    @Test func unreadable503IsStillRetried() throws {
        let harness = Harness([answer(503, "<html>Service Unavailable</html>"), describeOK])
        #expect(try describe(harness) == nil)
        #expect(harness.requests.count == 2)
    }

    @Test func successAfterTransientErrors() throws {
        let harness = Harness([jsonError(500, "InternalServiceError"), jsonError(503, "ServiceUnavailable"), describeOK])
        #expect(try describe(harness) == nil)
        #expect(harness.requests.count == 3)
    }

    @Test(arguments: ["ThrottlingException", "TooManyRequestsException", "RequestTimeout", "RequestLimitExceeded"])
    func throttlingCodeOn400IsRetried(_ code: String) throws {
        let harness = Harness([jsonError(400, code), jsonError(400, code), jsonError(400, code)])
        let error = try describe(harness)
        #expect(harness.requests.count == 3)
        #expect(error?.isServiceError(code) == true)
    }

    @Test func transportErrorIsRetriedThenTheLastOneThrown() throws {
        let harness = Harness([transportFailure(7), transportFailure(56), transportFailure(28, timeout: true)])
        let error = try describe(harness)
        #expect(harness.requests.count == 3)
        guard case .transport(let operation, let transport) = error else {
            Issue.record("expected a transport error, got \(String(describing: error))")
            return
        }
        #expect(operation == "DescribeSecret")
        #expect(transport.code == 28)
        #expect(transport.isTimeout)
    }

    @Test func transportErrorThenSuccess() throws {
        let harness = Harness([transportFailure(), describeOK])
        #expect(try describe(harness) == nil)
        #expect(harness.requests.count == 2)
    }

    @Test(arguments: [
        (400, "ValidationException"), (400, "AccessDeniedException"), (400, "ResourceNotFoundException"),
        (400, "InvalidRequestException"), (400, "InvalidParameterException"), (400, "ResourceExistsException"),
        (403, "AccessDeniedException"), (400, "UnrecognizedClientException"), (400, "DecryptionFailure"),
    ])
    func clientErrorIsNotRetried(_ status: Int, _ code: String) throws {
        let harness = Harness([jsonError(status, code), describeOK])
        let error = try describe(harness)
        #expect(harness.requests.count == 1)
        #expect(harness.clock.sleeps.isEmpty)
        #expect(error?.isServiceError(code) == true)
    }

    @Test func backoffWithPinnedRandom() throws {
        // delay = random * min(2^(n-1), 20) s: 0.5 * 1 s after attempt 1, 0.5 * 2 s after attempt 2.
        let harness = Harness([jsonError(500, "InternalFailure"), jsonError(500, "InternalFailure"), jsonError(500, "InternalFailure")])
        _ = try describe(harness, random: 0.5)
        #expect(harness.clock.sleeps == [500, 1000])
    }

    @Test(arguments: [0.0, 0.25, 0.999])
    func backoffStaysWithinItsCeiling(_ random: Double) throws {
        let harness = Harness([jsonError(503, "ServiceUnavailable"), jsonError(503, "ServiceUnavailable"), jsonError(503, "ServiceUnavailable")])
        _ = try describe(harness, random: random)
        #expect(harness.clock.sleeps.count == 2)
        for (index, sleep) in harness.clock.sleeps.enumerated() {
            let ceiling = Int64(min(1 << index, 20)) * 1000
            #expect(sleep >= 0 && sleep <= ceiling)
            // random * ceiling, to the millisecond
            #expect(abs(Double(sleep) - random * Double(ceiling)) <= 1)
        }
    }

    @Test func policyBackoffCeilingDoublesAndCapsAtTwentySeconds() {
        let policy = RetryPolicy()
        #expect(policy.maxAttempts == 3)
        // ceilings 1, 2, 4, 8, 16, 20, 20 s
        let expected: [Int64] = [500, 1000, 2000, 4000, 8000, 10_000, 10_000]
        for (index, value) in expected.enumerated() {
            #expect(policy.backoffMilliseconds(afterAttempt: index + 1, random: 0.5) == value)
        }
        #expect(policy.backoffMilliseconds(afterAttempt: 100, random: 0.5) == 10_000)
        #expect(policy.backoffMilliseconds(afterAttempt: 3, random: 0) == 0)
        #expect(policy.backoffMilliseconds(afterAttempt: 10, random: 0.999_999) <= 20_000)
    }

    @Test func policyClassification() {
        let policy = RetryPolicy()
        func error(_ code: String, _ status: Int) -> AWSServiceError {
            AWSServiceError(code: code, message: "", httpStatus: status, requestId: nil)
        }
        #expect(policy.isRetryable(error("HTTP500", 500)))
        #expect(policy.isRetryable(error("HTTP502", 502)))
        #expect(policy.isRetryable(error("HTTP504", 504)))
        #expect(policy.isRetryable(error("Throttled", 429)))
        #expect(policy.isRetryable(error("ThrottlingException", 400)))
        #expect(policy.isRetryable(error("RequestTimeout", 400)))
        #expect(!policy.isRetryable(error("ValidationException", 400)))
        #expect(!policy.isRetryable(error("AccessDeniedException", 400)))
        #expect(!policy.isRetryable(error("AccessDeniedException", 403)))
        #expect(!policy.isRetryable(error("ResourceNotFoundException", 400)))
        #expect(!policy.isRetryable(error("InvalidParameter", 400)))
        #expect(!policy.isRetryable(error("HTTP404", 404)))
    }

    @Test func everyAttemptIsSignedAfresh() throws {
        // Each request takes 2 s of virtual time; with random 0.5 the sleeps are 0.5 s and 1 s.
        let harness = Harness([jsonError(500, "InternalFailure"), jsonError(500, "InternalFailure"), jsonError(500, "InternalFailure")],
                              latencyMilliseconds: 2000)
        _ = try describe(harness, random: 0.5)
        let requests = harness.requests
        #expect(requests.count == 3)
        // t0 = 12:36:00; second attempt at t0 + 2 s + 0.5 s, third at t0 + 2.5 s + 2 s + 1 s.
        #expect(requests.map { $0.header("X-Amz-Date") } == ["20150830T123600Z", "20150830T123602Z", "20150830T123605Z"])
        let authorizations = requests.compactMap { $0.header("Authorization") }
        #expect(authorizations.count == 3)
        #expect(Set(authorizations).count == 3)
        for request in requests {
            #expect(request.headerCount("Authorization") == 1)
            #expect(request.headerCount("X-Amz-Date") == 1)
            #expect(request.headerCount("X-Amz-Security-Token") == 1)
            #expect(request.body == requests[0].body)
        }
    }
}

@Suite struct DeadlineTests {
    @Test(arguments: [0.1, 0.5, 0.999])
    func neverSleepsPastTheDeadlineReserve(_ random: Double) throws {
        let deadline = t0 + 1500
        let harness = Harness([jsonError(500, "InternalFailure", message: "boom"), jsonError(500, "InternalFailure", message: "boom"),
                               jsonError(500, "InternalFailure", message: "boom")], deadline: deadline)
        let error = try describe(harness, random: random)
        #expect(error?.isServiceError("InternalFailure") == true, "got \(String(describing: error))")
        #expect(!harness.requests.isEmpty)
        for end in harness.clock.sleepEnds {
            #expect(end <= deadline - 1000)
        }
        for (request, sentAt) in zip(harness.requests, harness.http.sentAt) {
            let timeout = try #require(request.timeoutMilliseconds)
            #expect(timeout > 0)
            #expect(Int64(timeout) <= deadline - sentAt)
        }
    }

    @Test func slowAnswersDoNotLeadToASleepPastTheDeadline() throws {
        // Each attempt takes 600 ms: after the first, 900 ms are left, less than the reserve plus any delay.
        let deadline = t0 + 1500
        let harness = Harness([jsonError(503, "ServiceUnavailable"), jsonError(503, "ServiceUnavailable"), jsonError(503, "ServiceUnavailable")],
                              latencyMilliseconds: 600, deadline: deadline)
        let error = try describe(harness, random: 0.5)
        #expect(error?.isServiceError("ServiceUnavailable") == true, "got \(String(describing: error))")
        #expect(harness.clock.sleeps.isEmpty)
        #expect(harness.requests.count == 1)
    }

    @Test(arguments: [-1 as Int64, -60_000, 0, 500, 1000])
    func deadlineAlreadyPassedOrInsideTheReserveSendsNothing(_ offset: Int64) throws {
        let harness = Harness([describeOK], deadline: t0 + offset)
        let error = try describe(harness)
        guard case .deadline(let operation) = error else {
            Issue.record("expected .deadline, got \(String(describing: error))")
            return
        }
        #expect(operation == "DescribeSecret")
        #expect(harness.requests.isEmpty)
        #expect(harness.clock.sleeps.isEmpty)
    }

    @Test func perAttemptTimeoutNeverExceedsTheRemainingTime() throws {
        let deadline = t0 + 10_000
        let harness = Harness([jsonError(500, "InternalFailure"), jsonError(500, "InternalFailure"), jsonError(500, "InternalFailure")],
                              latencyMilliseconds: 3000, deadline: deadline)
        _ = try describe(harness, random: 0)
        #expect(harness.requests.count == 3)
        for (request, sentAt) in zip(harness.requests, harness.http.sentAt) {
            let timeout = try #require(request.timeoutMilliseconds)
            #expect(timeout > 0)
            #expect(Int64(timeout) <= deadline - sentAt)
        }
    }

    @Test func aLargerReserveEndsEveryAttemptAndWaitThatMuchBeforeTheDeadline() throws {
        // An answer that never comes: each attempt runs to its timeout.
        let deadline = t0 + 30_000
        let reserve: Int64 = 3_000
        let harness = Harness([.timeOut, .timeOut, .timeOut], deadline: deadline)
        let client = SecretsManagerClient(try harness.client(.secretsManager, deadlineReserveMilliseconds: reserve))
        let error = caught { () throws(AWSError) in _ = try client.describeSecret("s") }
        guard case .transport = error else {
            Issue.record("expected the transport error, got \(String(describing: error))")
            return
        }
        // 20 s for the first attempt, the rest of what the reserve leaves for the second.
        #expect(harness.requests.count == 2)
        #expect(harness.clock.nowMilliseconds <= deadline - reserve)
        for (request, sentAt) in zip(harness.requests, harness.http.sentAt) {
            let timeout = try #require(request.timeoutMilliseconds)
            #expect(Int64(timeout) <= deadline - reserve - sentAt)
        }
    }

    @Test func aFarDeadlineStillBoundsEachAttempt() throws {
        let harness = Harness([describeOK], deadline: t0 + 900_000)
        #expect(try describe(harness) == nil)
        let timeout = try #require(harness.requests.first?.timeoutMilliseconds)
        #expect(timeout > 0 && timeout <= 900_000)
    }

    @Test func withoutADeadlineEachAttemptStillHasATimeout() throws {
        let harness = Harness([describeOK])
        #expect(try describe(harness) == nil)
        let timeout = try #require(harness.requests.first?.timeoutMilliseconds)
        #expect(timeout > 0)
    }

    @Test func eachInvocationsViewOfAClientHasItsOwnDeadline() throws {
        // The function makes its clients' views per invocation, from one long-lived client.
        let harness = Harness([describeOK, describeOK])
        let base = try harness.client(.secretsManager)
        let expired = SecretsManagerClient(base.until(t0 - 1))
        let first = caught { () throws(AWSError) in _ = try expired.describeSecret("s") }
        if case .deadline = first {} else { Issue.record("expected .deadline, got \(String(describing: first))") }
        let next = SecretsManagerClient(base.until(t0 + 60_000))
        let second = caught { () throws(AWSError) in _ = try next.describeSecret("s") }
        #expect(second == nil)
        #expect(harness.requests.count == 1)
    }
}
