import AWS
import HTTP
import RotatorJSON
import RotatorTestSupport
import Testing

/// The calls only the operator commands make (DescribeSecret's rotation fields, ListSecretVersionIds,
/// DescribeInstanceInformation, DescribeDocument, GetDocument, Lambda's GetFunctionConfiguration, FilterLogEvents).
@Suite struct OperatorCallTests {
    @Test func describeSecretReadsTheRotationFields() throws {
        let harness = Harness([ok("""
            {"ARN":"arn:x","Name":"prod/db","RotationEnabled":true,
             "RotationLambdaARN":"arn:aws:lambda:us-east-1:123456789012:function:rotator",
             "RotationRules":{"AutomaticallyAfterDays":30,"Duration":"3h"},
             "LastRotatedDate":1.523477145713E9,"NextRotationDate":1523563545,"VersionIdsToStages":{}}
            """), ok(#"{"ARN":"arn:x","RotationRules":{"ScheduleExpression":"cron(0 4 ? * SUN *)"}}"#)])
        let client = try harness.secretsManager()
        let secret = try client.describeSecret("prod/db")
        #expect(secret.name == "prod/db")
        #expect(secret.rotationLambdaArn == "arn:aws:lambda:us-east-1:123456789012:function:rotator")
        #expect(secret.rotationSchedule == RotationSchedule(scheduleExpression: nil, automaticallyAfterDays: 30, duration: "3h"))
        #expect(secret.rotationSchedule?.summary == "rate(30 days)")
        #expect(secret.lastRotatedMilliseconds == 1_523_477_145_713)
        #expect(secret.nextRotationMilliseconds == 1_523_563_545_000)
        let cron = try client.describeSecret("s")
        #expect(cron.rotationSchedule?.summary == "cron(0 4 ? * SUN *)")
        #expect(cron.lastRotatedMilliseconds == nil && cron.rotationLambdaArn == nil)
    }

    @Test func listSecretVersionIdsFollowsEveryPage() throws {
        let harness = Harness([
            ok(#"{"Versions":[{"VersionId":"v1","VersionStages":["AWSCURRENT"],"CreatedDate":1700000000.5}],"NextToken":"page2"}"#),
            ok(#"{"Versions":[{"VersionId":"v2","VersionStages":[]}]}"#),
        ])
        let versions = try harness.secretsManager().listSecretVersionIds("arn:x")
        #expect(versions == [SecretVersionEntry(versionId: "v1", stages: ["AWSCURRENT"], createdMilliseconds: 1_700_000_000_500),
                             SecretVersionEntry(versionId: "v2", stages: [], createdMilliseconds: nil)])
        #expect(harness.requests.map { $0.header("X-Amz-Target") } == Array(repeating: "secretsmanager.ListSecretVersionIds", count: 2))
        #expect(harness.requests[0].bodyJSON?["NextToken"] == nil)
        #expect(harness.requests[1].bodyJSON?["NextToken"] == .string("page2"))
    }

    @Test func listSecretsFiltersByTagAndFollowsEveryPage() throws {
        let harness = Harness([
            ok("""
               {"SecretList":[{"ARN":"arn:a","Name":"rotator/fleet/a","RotationEnabled":true,"RotationLambdaARN":"arn:f",
                 "RotationRules":{"AutomaticallyAfterDays":30},"LastRotatedDate":1700000000,"NextRotationDate":1702592000,
                 "SecretVersionsToStages":{"v1":["AWSCURRENT"],"v2":["AWSPENDING"]},
                 "Tags":[{"Key":"RotatorFleet","Value":"fleet"},{"Key":"RotatorLogin","Value":"app_a"}]}],"NextToken":"page2"}
               """),
            ok(#"{"SecretList":[{"ARN":"arn:b","Name":"rotator/fleet/b"}],"NextToken":""}"#),
        ])
        let secrets = try harness.secretsManager().listSecrets(taggedWith: "RotatorFleet", value: "fleet")
        #expect(secrets.map(\.arn) == ["arn:a", "arn:b"])
        // A SecretListEntry's stages are SecretVersionsToStages, not DescribeSecret's VersionIdsToStages.
        #expect(secrets[0].versionIdsToStages == ["v1": ["AWSCURRENT"], "v2": ["AWSPENDING"]])
        #expect(secrets[0].tags == ["RotatorFleet": "fleet", "RotatorLogin": "app_a"])
        #expect(secrets[0].rotationLambdaArn == "arn:f" && secrets[0].rotationEnabled == true)
        #expect(secrets[0].lastRotatedMilliseconds == 1_700_000_000_000 && secrets[0].nextRotationMilliseconds == 1_702_592_000_000)
        #expect(secrets[1].name == "rotator/fleet/b" && secrets[1].versionIdsToStages.isEmpty && secrets[1].tags.isEmpty)
        // An empty NextToken ends the listing as its absence does.
        #expect(harness.requests.map { $0.header("X-Amz-Target") } == Array(repeating: "secretsmanager.ListSecrets", count: 2))
        let first = try #require(harness.requests[0].bodyJSON)
        #expect(first["Filters"] == .array([
            .object([("Key", .string("tag-key")), ("Values", .array([.string("RotatorFleet")]))]),
            .object([("Key", .string("tag-value")), ("Values", .array([.string("fleet")]))]),
        ]))
        #expect(first["MaxResults"] == .integer(100))
        #expect(first["NextToken"] == nil)
        #expect(harness.requests[1].bodyJSON?["NextToken"] == .string("page2"))
        #expect(harness.requests[1].bodyJSON?["Filters"] == first["Filters"])
    }

    /// Every listing the operator commands follow page by page, with the member its entries are in.
    enum Listing: String, CaseIterable {
        case listSecrets = "ListSecrets", listSecretVersionIds = "ListSecretVersionIds",
             describeInstanceInformation = "DescribeInstanceInformation"

        var member: String {
            switch self {
            case .listSecrets: return "SecretList"
            case .listSecretVersionIds: return "Versions"
            case .describeInstanceInformation: return "InstanceInformationList"
            }
        }

        func run(_ harness: Harness) throws {
            switch self {
            case .listSecrets: _ = try harness.secretsManager().listSecrets(taggedWith: "RotatorFleet", value: "fleet")
            case .listSecretVersionIds: _ = try harness.secretsManager().listSecretVersionIds("arn:x")
            case .describeInstanceInformation: _ = try harness.ssm().describeInstanceInformation(instanceIds: ["i-0123456789abcdef0"])
            }
        }
    }

    /// A listing that answers a NextToken it answered before goes round in a circle: `status
    /// --fleet`, which has no deadline, would call it forever and keep every page. It is refused
    /// at the first repeat, after the three calls that showed it, not followed.
    @Test(arguments: Listing.allCases) func aNextTokenAnsweredTwiceEndsTheListingWithAnError(listing: Listing) throws {
        let page = { (token: String) in ok(#"{"\#(listing.member)":[],"NextToken":"\#(token)"}"#) }
        let harness = Harness([page("a"), page("b"), page("a"), page("b"), page("a"), page("b")])
        let error = caught { () throws in try listing.run(harness) }
        guard case .malformedResponse(let operation, let reason)? = error as? AWSError else {
            Issue.record("expected malformedResponse, got \(String(describing: error))")
            return
        }
        #expect(operation == listing.rawValue && reason.contains("NextToken"))
        #expect(harness.requests.map { $0.bodyJSON?["NextToken"]?.stringValue } == [nil, "a", "b"])
    }

    @Test func aListedSecretWithoutARNIsMalformed() throws {
        let harness = Harness([ok(#"{"SecretList":[{"Name":"x"}]}"#)])
        let client = try harness.secretsManager()
        let error = caught { () throws(AWSError) in _ = try client.listSecrets(taggedWith: "RotatorFleet", value: "fleet") }
        guard case .malformedResponse(let operation, _) = error else {
            Issue.record("expected malformedResponse, got \(String(describing: error))")
            return
        }
        #expect(operation == "ListSecrets")
    }

    @Test func describeInstanceInformationFiltersByIdAndReadsPlatformAndPing() throws {
        let harness = Harness([ok("""
            {"InstanceInformationList":[{"InstanceId":"i-0123456789abcdef0","PingStatus":"Online","PlatformType":"Windows",
              "PlatformName":"Microsoft Windows Server 2022","AgentVersion":"3.3.0.0"},
             {"InstanceId":"i-0123456789abcdef1","PingStatus":"ConnectionLost","PlatformType":"Linux"}]}
            """)])
        let instances = try harness.ssm().describeInstanceInformation(instanceIds: ["i-0123456789abcdef0", "i-0123456789abcdef1"])
        let request = try #require(harness.requests.first)
        #expect(request.header("X-Amz-Target") == "AmazonSSM.DescribeInstanceInformation")
        #expect(request.bodyJSON?["Filters"] == .array([.object([
            ("Key", .string("InstanceIds")), ("Values", .array([.string("i-0123456789abcdef0"), .string("i-0123456789abcdef1")])),
        ])]))
        #expect(instances == [
            ManagedInstance(instanceId: "i-0123456789abcdef0", pingStatus: "Online", platformType: "Windows",
                            platformName: "Microsoft Windows Server 2022", agentVersion: "3.3.0.0"),
            ManagedInstance(instanceId: "i-0123456789abcdef1", pingStatus: "ConnectionLost", platformType: "Linux",
                            platformName: nil, agentVersion: nil),
        ])
    }

    @Test func aMissingDocumentIsNilAndOtherErrorsThrow() throws {
        let harness = Harness([ok(#"{"Document":{"Name":"Doc","Status":"Active"}}"#),
                               jsonError(400, "InvalidDocument", message: "The specified document does not exist."),
                               jsonError(400, "AccessDeniedException")])
        let ssm = try harness.ssm()
        #expect(try ssm.documentStatus(name: "Doc") == "Active")
        #expect(try ssm.documentStatus(name: "Gone") == nil)
        #expect(caught { () throws(AWSError) in _ = try ssm.documentStatus(name: "Doc") }?.isServiceError("AccessDeniedException") == true)
        #expect(harness.requests[0].bodyJSON?["Name"] == .string("Doc"))
    }

    @Test func getDocumentAsksForJSONContentAndAMissingOneIsNil() throws {
        let harness = Harness([ok(#"{"Name":"Doc","DocumentVersion":"3","Status":"Active","DocumentType":"Command","DocumentFormat":"JSON","Content":"{\"schemaVersion\":\"2.2\"}"}"#),
                               jsonError(400, "InvalidDocument", message: "The specified document does not exist."),
                               ok(#"{"Name":"Doc"}"#),
                               jsonError(400, "AccessDeniedException")])
        let ssm = try harness.ssm()
        #expect(try ssm.getDocument(name: "Doc") == SSMDocument(name: "Doc", documentVersion: "3", documentType: "Command",
                                                                status: "Active", content: #"{"schemaVersion":"2.2"}"#))
        #expect(try ssm.getDocument(name: "Gone") == nil)
        #expect(caught { () throws(AWSError) in _ = try ssm.getDocument(name: "Doc") } == .malformedResponse(operation: "GetDocument", reason: "no Content"))
        #expect(caught { () throws(AWSError) in _ = try ssm.getDocument(name: "Doc") }?.isServiceError("AccessDeniedException") == true)
        #expect(harness.requests[0].header("X-Amz-Target") == "AmazonSSM.GetDocument")
        #expect(harness.requests[0].bodyJSON?["Name"] == .string("Doc"))
        #expect(harness.requests[0].bodyJSON?["DocumentFormat"] == .string("JSON"))
    }

    @Test func getFunctionConfigurationIsASignedGetOnTheEncodedName() throws {
        let harness = Harness([
            ok(#"{"FunctionName":"rotator","FunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:rotator","Environment":{"Variables":{"POSTGRES_DOCUMENT":"Stack-Postgres-1"}},"LoggingConfig":{"LogFormat":"JSON","LogGroup":"stack-RotationFunctionLogGroup-abc"}}"#),
            ok(#"{"FunctionName":"rotator","FunctionArn":"arn:f"}"#),
        ])
        let lambda = LambdaClient(try harness.client(.lambda))
        let settings = try lambda.getFunctionConfiguration("arn:aws:lambda:us-east-1:123456789012:function:rotator")
        #expect(settings == FunctionSettings(functionArn: "arn:aws:lambda:us-east-1:123456789012:function:rotator",
                                             environment: ["POSTGRES_DOCUMENT": "Stack-Postgres-1"],
                                             logGroup: "stack-RotationFunctionLogGroup-abc"))
        let request = try #require(harness.requests.first)
        #expect(request.method == "GET")
        #expect(request.body.isEmpty)
        #expect(request.url.hasSuffix("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Arotator/configuration"))
        #expect(request.header("Authorization")?.contains("/us-east-1/lambda/aws4_request") == true)
        // Without a LoggingConfig, Lambda writes to /aws/lambda/<name>.
        #expect(try lambda.getFunctionConfiguration("rotator").logGroup == "/aws/lambda/rotator")
    }

    @Test func filterLogEventsAsksForTheMemberToEqualTheValueOnEveryPage() throws {
        let harness = Harness([
            ok(#"{"events":[{"timestamp":20,"message":"b"}],"nextToken":"t2"}"#),
            ok(#"{"events":[{"timestamp":10,"message":"a"},{"timestamp":30,"message":"c"}]}"#),
        ])
        let logs = CloudWatchLogsClient(try harness.client(.logs))
        let arn = "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:team/db_app+1=x.y@z-AbC123"
        let search = try logs.filterLogEvents(logGroup: "/aws/lambda/rotator", member: "SecretId", equals: arn, startMilliseconds: 5, limit: 2)
        #expect(search == LogSearch(events: [LogEvent(timestampMilliseconds: 20, message: "b"), LogEvent(timestampMilliseconds: 30, message: "c")],
                                    incompleteBecause: "only the newest 2 of 3 matching events were kept"))
        let first = try #require(harness.requests.first)
        #expect(first.header("X-Amz-Target") == "Logs_20140328.FilterLogEvents")
        // Every character a secret's ARN may hold stands for itself inside the quotes.
        #expect(first.bodyJSON?["filterPattern"] == .string(#"{ $.SecretId = "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:team/db_app+1=x.y@z-AbC123" }"#))
        #expect(first.bodyJSON?["startTime"] == .number("5"))
        #expect(harness.requests[1].bodyJSON?["nextToken"] == .string("t2"))
        #expect(harness.requests[1].bodyJSON?["filterPattern"] == first.bodyJSON?["filterPattern"])
    }

    /// A value the pattern could not state exactly (a wildcard, a regular expression's `%`, a quote, a
    /// space, a backslash, a non-ASCII letter) is not searched for more loosely: nothing is sent, and
    /// the search says it was not made.
    @Test(arguments: ["arn:aws:x:secret:a*", "arn:aws:x:secret:%a%", "arn:aws:x:secret:a\"b", "arn:aws:x:secret:a b",
                      "arn:aws:x:secret:a\\b", "arn:aws:x:secret:é", ""])
    func filterLogEventsRefusesAValueItCannotStateExactly(value: String) throws {
        let harness = Harness([])
        let logs = CloudWatchLogsClient(try harness.client(.logs))
        let search = try logs.filterLogEvents(logGroup: "/aws/lambda/rotator", member: "SecretId", equals: value, startMilliseconds: 5, limit: 2)
        #expect(search.events.isEmpty)
        #expect(search.incompleteBecause?.hasPrefix("the log was not searched") == true)
        #expect(harness.requests.isEmpty)
    }

    @Test func filterLogEventsSaysWhenItStoppedAtThePageLimit() throws {
        let harness = Harness((1...21).map { ok(#"{"events":[{"timestamp":1,"message":"m"}],"nextToken":"t\#($0)"}"#) })
        let logs = CloudWatchLogsClient(try harness.client(.logs))
        let search = try logs.filterLogEvents(logGroup: "/aws/lambda/rotator", member: "SecretId", equals: "arn:aws:x", startMilliseconds: 0, limit: 200)
        #expect(harness.requests.count == 20)
        #expect(search.events.count == 20)
        #expect(search.incompleteBecause == "the log search stopped after 20 pages with more to read")
    }

    @Test func filterLogEventsThatReadEverythingIsComplete() throws {
        let harness = Harness([ok(#"{"events":[{"timestamp":1,"message":"m"}],"nextToken":"t2"}"#), ok(#"{"events":[]}"#)])
        let logs = CloudWatchLogsClient(try harness.client(.logs))
        let search = try logs.filterLogEvents(logGroup: "/aws/lambda/rotator", member: "SecretId", equals: "arn:aws:x", startMilliseconds: 0, limit: 1)
        #expect(search == LogSearch(events: [LogEvent(timestampMilliseconds: 1, message: "m")], incompleteBecause: nil))
    }
}
