import AWS
import HTTP
import RotatorJSON
import RotatorTestSupport
import Testing

@Suite struct JSONErrorParsingTests {
    func describeError(_ step: ScriptedHTTPClient.Step) throws -> AWSServiceError? {
        let harness = Harness([step])
        let client = try harness.secretsManager()
        let error = caught { () throws(AWSError) in _ = try client.describeSecret("s") }
        guard case .service(let operation, let serviceError) = error else {
            Issue.record("expected a service error, got \(String(describing: error))")
            return nil
        }
        #expect(operation == "DescribeSecret")
        return serviceError
    }

    // The forms of `__type` from the AWS JSON 1.1 protocol specification (Smithy): a bare shape name,
    // a name with a namespace before `#`, a name followed by `:` and a URI, and both.
    @Test(arguments: [
        "ResourceNotFoundException",
        "com.amazonaws.secretsmanager#ResourceNotFoundException",
        "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.coral.validate/",
        "com.amazonaws.secretsmanager#ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.coral.validate/",
    ])
    func typeIsReducedToTheShapeName(_ type: String) throws {
        let error = try #require(try describeError(jsonError(400, type, message: "Secrets Manager can't find the specified secret.",
                                                            requestId: "2d1a4b2c-0000-4000-8000-000000000001")))
        #expect(error.code == "ResourceNotFoundException")
        #expect(error.message == "Secrets Manager can't find the specified secret.")
        #expect(error.httpStatus == 400)
        #expect(error.requestId == "2d1a4b2c-0000-4000-8000-000000000001")
    }

    @Test func messageMayBeCapitalised() throws {
        let error = try #require(try describeError(answer(400, #"{"__type":"AccessDeniedException","Message":"not allowed"}"#)))
        #expect(error.code == "AccessDeniedException")
        #expect(error.message == "not allowed")
    }

    @Test func requestIdHeaderNameIsCaseInsensitive() throws {
        let error = try #require(try describeError(answer(400, #"{"__type":"InvalidRequestException","message":"m"}"#,
                                                          headers: [("x-amzn-requestid", "lower-1")])))
        #expect(error.requestId == "lower-1")
        #expect(error.code == "InvalidRequestException")
    }

    @Test func noRequestIdWhenTheHeaderIsAbsent() throws {
        let error = try #require(try describeError(answer(400, #"{"__type":"InvalidParameterException","message":"m"}"#)))
        #expect(error.requestId == nil)
        #expect(error.code == "InvalidParameterException")
    }

    @Test func errorTypeHeaderIsUsedWhenTheBodyHasNoType() throws {
        let error = try #require(try describeError(answer(400, #"{"message":"m"}"#, headers: [
            ("X-Amzn-ErrorType", "InvalidParameterException:http://internal.amazon.com/coral/com.amazon.coral.validate/"),
        ])))
        #expect(error.code == "InvalidParameterException")
    }

    @Test func descriptionCarriesCodeStatusAndRequestId() throws {
        let harness = Harness([jsonError(400, "ResourceNotFoundException", message: "gone", requestId: "rid-7")])
        let client = try harness.secretsManager()
        let error = try #require(caught { () throws(AWSError) in _ = try client.describeSecret("s") })
        #expect(error.isServiceError("ResourceNotFoundException"))
        #expect(!error.isServiceError("ValidationException"))
        #expect(error.serviceError?.httpStatus == 400)
        let text = error.description
        #expect(text.contains("DescribeSecret"))
        #expect(text.contains("ResourceNotFoundException"))
        #expect(text.contains("400"))
        #expect(text.contains("rid-7"))
        #expect(text.contains("gone"))
    }

    @Test func unreadableSuccessBodyIsMalformedResponse() throws {
        let harness = Harness([ok("<html>not json</html>")])
        let client = try harness.secretsManager()
        let error = caught { () throws(AWSError) in _ = try client.describeSecret("s") }
        guard case .malformedResponse(let operation, _) = error else {
            Issue.record("expected malformedResponse, got \(String(describing: error))")
            return
        }
        #expect(operation == "DescribeSecret")
    }
}

@Suite struct QueryErrorParsingTests {
    func publishError(_ steps: [ScriptedHTTPClient.Step]) throws -> (AWSError?, Harness) {
        let harness = Harness(steps)
        let client = try harness.sns()
        return (caught { () throws(AWSError) in try client.publish(topicArn: "t", subject: "s", message: "m") }, harness)
    }

    @Test func xmlErrorResponse() throws {
        let xml = """
            <ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
              <Error><Type>Sender</Type><Code>InvalidParameter</Code><Message>a &amp; b</Message></Error>
              <RequestId>r-1</RequestId>
            </ErrorResponse>
            """
        let (error, harness) = try publishError([answer(400, xml, headers: [("Content-Type", "text/xml")])])
        guard case .service(let operation, let serviceError) = error else {
            Issue.record("expected a service error, got \(String(describing: error))")
            return
        }
        #expect(operation == "Publish")
        #expect(serviceError.code == "InvalidParameter")
        #expect(serviceError.message == "a & b")
        #expect(serviceError.requestId == "r-1")
        #expect(serviceError.httpStatus == 400)
        #expect(harness.requests.count == 1)
    }

    @Test func xmlEntitiesAreDecodedOnce() throws {
        let xml = "<ErrorResponse><Error><Code>InvalidParameter</Code><Message>&lt;x&gt; &quot;q&quot; &apos;a&apos; &#65;&#x42; &amp;lt;</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        let (error, _) = try publishError([answer(400, xml)])
        #expect(error?.serviceError?.message == "<x> \"q\" 'a' AB &lt;")
    }

    @Test func snsThrottledIsRetried() throws {
        // SNS answers throttling with HTTP 429 and the code Throttled.
        let throttled = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttled</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        let (error, harness) = try publishError([answer(429, throttled), answer(429, throttled), answer(429, throttled)])
        #expect(error?.isServiceError("Throttled") == true)
        #expect(harness.requests.count == 3)
    }

    @Test func authorizationErrorIsNotRetried() throws {
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>no</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        let (error, harness) = try publishError([answer(403, xml)])
        #expect(error?.isServiceError("AuthorizationError") == true)
        #expect(error?.serviceError?.httpStatus == 403)
        #expect(harness.requests.count == 1)
    }
}
