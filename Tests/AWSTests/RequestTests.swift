import AWS
import HTTP
import RotatorJSON
import SigV4
import RotatorTestSupport
import Testing

@Suite struct JSONProtocolRequestTests {
    @Test func describeSecretRequestShape() throws {
        var environment = baseEnvironment
        environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = "http://localhost:4566"
        let harness = Harness([ok(#"{"ARN":"arn:x","VersionIdsToStages":{}}"#)])
        _ = try harness.secretsManager(environment: environment).describeSecret("prod/db")
        #expect(harness.requests.count == 1)
        let request = try #require(harness.requests.first)
        #expect(request.method == "POST")
        #expect(request.url == "http://localhost:4566")
        #expect(request.header("X-Amz-Target") == "secretsmanager.DescribeSecret")
        #expect(request.header("Content-Type") == "application/x-amz-json-1.1")
        #expect(request.header("Host") == "localhost:4566")
        #expect(request.header("X-Amz-Date") == "20150830T123600Z")
        #expect(request.header("X-Amz-Security-Token") == "session-token-1")
        #expect(request.header("User-Agent") == nil)
        for name in ["Host", "Content-Type", "X-Amz-Target", "X-Amz-Date", "X-Amz-Security-Token", "Authorization"] {
            #expect(request.headerCount(name) == 1, "\(name) sent \(request.headerCount(name)) times")
        }
        #expect(request.bodyJSON == .object([("SecretId", .string("prod/db"))]))
    }

    @Test func authorizationHeaderShape() throws {
        let harness = Harness([ok(#"{"ARN":"arn:x"}"#)])
        _ = try harness.secretsManager().describeSecret("s")
        let request = try #require(harness.requests.first)
        let authorization = try #require(request.header("Authorization"))
        #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/aws4_request, SignedHeaders="))
        #expect(request.signedHeaders == ["content-type", "host", "x-amz-date", "x-amz-security-token", "x-amz-target"])
        let signature = try #require(authorization.firstRange(of: "Signature=").map { String(authorization[$0.upperBound...]) })
        #expect(signature.count == 64)
        #expect(signature.allSatisfy { "0123456789abcdef".contains($0) })
    }

    @Test func ssmTargetAndSigningScope() throws {
        let harness = Harness([ok(#"{"Command":{"CommandId":"c-1"}}"#)])
        _ = try harness.ssm().sendCommand(SendCommandInput(documentName: "AWS-RunShellScript", instanceIds: ["i-1"],
                                                           parameters: [], comment: "", timeoutSeconds: 30))
        let request = try #require(harness.requests.first)
        #expect(request.url == "https://ssm.us-east-1.amazonaws.com")
        #expect(request.header("X-Amz-Target") == "AmazonSSM.SendCommand")
        #expect(request.header("Content-Type") == "application/x-amz-json-1.1")
        #expect(request.header("Host") == "ssm.us-east-1.amazonaws.com")
        #expect(request.header("Authorization")?.contains("Credential=AKIDEXAMPLE/20150830/us-east-1/ssm/aws4_request") == true)
        #expect(request.signedHeaders == ["content-type", "host", "x-amz-date", "x-amz-security-token", "x-amz-target"])
    }

    @Test(arguments: [
        ("https://example.com:443", "example.com"),
        ("http://example.com:80", "example.com"),
        ("https://example.com:8443", "example.com:8443"),
        ("http://localhost:4566/", "localhost:4566"),
        ("http://example.com:443", "example.com:443"),
    ])
    func hostHeaderCarriesOnlyANonDefaultPort(_ endpoint: String, _ host: String) throws {
        var environment = baseEnvironment
        environment["AWS_ENDPOINT_URL"] = endpoint
        let harness = Harness([ok(#"{"ARN":"arn:x"}"#)])
        _ = try harness.secretsManager(environment: environment).describeSecret("s")
        #expect(harness.requests.first?.header("Host") == host)
    }

    @Test func withoutSessionTokenNoTokenHeaderIsSentOrSigned() throws {
        var environment = baseEnvironment
        environment["AWS_SESSION_TOKEN"] = nil
        let harness = Harness([ok(#"{"ARN":"arn:x"}"#)])
        _ = try harness.secretsManager(environment: environment).describeSecret("s")
        let request = try #require(harness.requests.first)
        #expect(request.header("X-Amz-Security-Token") == nil)
        #expect(request.signedHeaders == ["content-type", "host", "x-amz-date", "x-amz-target"])
    }

    /// The signature must cover exactly the headers and body that are sent: re-signing what went
    /// on the wire with the signer (checked against the official suite in SigV4Tests) must give the
    /// same Authorization.
    @Test func signatureCoversWhatIsSent() throws {
        var environment = baseEnvironment
        environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = "http://localhost:4566"
        let harness = Harness([ok(#"{"ARN":"arn:x"}"#), ok("<PublishResponse><MessageId>m</MessageId></PublishResponse>")])
        _ = try harness.secretsManager(environment: environment).describeSecret("prod/db")
        try harness.sns().publish(topicArn: "arn:aws:sns:us-east-1:123456789012:alerts", subject: "s s", message: "m")
        for (request, service) in zip(harness.requests, ["secretsmanager", "sns"]) {
            let signer = SigV4Signer(
                credentials: Credentials(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                         sessionToken: "session-token-1"),
                region: "us-east-1", service: service)
            let amzDate = try #require(request.header("X-Amz-Date"))
            let time = try #require(AmzTime(amzDate: amzDate))
            let unsigned = request.headers.filter { $0.name.lowercased() != "authorization" }
            let path = try #require(URLParts(request.url)).path
            let resigned = signer.sign(SigningRequest(method: request.method, path: path, headers: unsigned, body: request.body), at: time)
            let expected = resigned.first { $0.name == "Authorization" }?.value
            #expect(expected != nil)
            #expect(request.header("Authorization") == expected)
        }
    }
}

@Suite struct QueryProtocolRequestTests {
    /// Splits `a=b&c=d` without decoding.
    func pairs(_ form: String) -> [(String, String)] {
        form.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
    }

    @Test func publishIsAFormEncodedPost() throws {
        let harness = Harness([ok("<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>",
                                  headers: [("Content-Type", "text/xml")])])
        try harness.sns().publish(topicArn: "arn:aws:sns:us-east-1:123456789012:db-alerts",
                                  subject: "Rotation failed", message: "step setSecret: a+b&c=d/é")
        let request = try #require(harness.requests.first)
        #expect(request.method == "POST")
        #expect(request.url == "https://sns.us-east-1.amazonaws.com")
        #expect(request.header("Content-Type") == "application/x-www-form-urlencoded; charset=utf-8")
        #expect(request.header("X-Amz-Target") == nil)
        #expect(request.header("Host") == "sns.us-east-1.amazonaws.com")
        #expect(request.header("Authorization")?.contains("Credential=AKIDEXAMPLE/20150830/us-east-1/sns/aws4_request") == true)
        #expect(request.signedHeaders == ["content-type", "host", "x-amz-date", "x-amz-security-token"])

        let body = request.bodyText
        #expect(body.hasPrefix("Action=Publish&Version=2010-03-31&"))
        let fields = pairs(body)
        #expect(fields.count == 5)
        func field(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
        // Form encoding: ':' is %3A, ' ' is '+', '+' %2B, '&' %26, '=' %3D, '/' %2F, 'é' %C3%A9.
        #expect(field("TopicArn") == "arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Adb-alerts")
        #expect(field("Subject") == "Rotation+failed")
        #expect(field("Message") == "step+setSecret%3A+a%2Bb%26c%3Dd%2F%C3%A9")
    }

    /// The whole body, byte for byte, as botocore 1.43.11 writes it for the same call (moto re-encodes
    /// the parsed form this way before checking the signature; pytests/e2e publishes against it). The
    /// expected bytes were printed by botocore itself:
    ///   req = create_serializer("query").serialize_to_request(
    ///       {"TopicArn": ..., "Subject": ..., "Message": ...}, sns_model.operation_model("Publish"))
    ///   AWSRequest(method="POST", url="https://x", data=req["body"]).prepare().body
    @Test func publishBodyIsBotocoresByteForByte() throws {
        let harness = Harness([ok("<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>")])
        let message = "Rotation of prod/db failed at setSecret: a+b c&d=e%20f ~*'()!$,;:@?#[]\"<>\\^`{|}\n\té ✓ 🙂"
        try harness.sns().publish(topicArn: "arn:aws:sns:us-east-1:123456789012:db-alerts",
                                  subject: "Rotation failed: prod/db (setSecret)", message: message)
        let request = try #require(harness.requests.first)
        #expect(request.bodyText == "Action=Publish&Version=2010-03-31"
            + "&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Adb-alerts"
            + "&Subject=Rotation+failed%3A+prod%2Fdb+%28setSecret%29"
            + "&Message=Rotation+of+prod%2Fdb+failed+at+setSecret%3A+a%2Bb+c%26d%3De%2520f+~%2A%27%28%29%21%24%2C%3B%3A%40%3F%23%5B%5D%22"
            + "%3C%3E%5C%5E%60%7B%7C%7D%0A%09%C3%A9+%E2%9C%93+%F0%9F%99%82")
    }

    @Test func publishWithoutMessageIdIsMalformed() throws {
        let harness = Harness([ok("<PublishResponse></PublishResponse>")])
        let sns = try harness.sns()
        let error = caught { () throws(AWSError) in try sns.publish(topicArn: "t", subject: "s", message: "m") }
        guard case .malformedResponse(let operation, _) = error else {
            Issue.record("expected malformedResponse, got \(String(describing: error))")
            return
        }
        #expect(operation == "Publish")
    }
}
