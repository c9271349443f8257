import AWS
import Testing

@Suite struct EndpointResolutionTests {
    func configuration(_ extra: [String: String], region: String = "us-east-1") throws -> AWSConfiguration {
        var environment = baseEnvironment
        environment["AWS_REGION"] = region
        environment.merge(extra) { $1 }
        return try AWSConfiguration(environment: environment)
    }

    @Test func regionalDefaults() throws {
        let c = try configuration([:], region: "eu-west-1")
        #expect(c.endpoint(for: .secretsManager) == "https://secretsmanager.eu-west-1.amazonaws.com")
        #expect(c.endpoint(for: .ssm) == "https://ssm.eu-west-1.amazonaws.com")
        #expect(c.endpoint(for: .sns) == "https://sns.eu-west-1.amazonaws.com")
    }

    @Test(arguments: ["cn-north-1", "cn-northwest-1"])
    func chinaRegionsUseTheChinaDomain(_ region: String) throws {
        let c = try configuration([:], region: region)
        #expect(c.endpoint(for: .secretsManager) == "https://secretsmanager.\(region).amazonaws.com.cn")
        #expect(c.endpoint(for: .ssm) == "https://ssm.\(region).amazonaws.com.cn")
        #expect(c.endpoint(for: .sns) == "https://sns.\(region).amazonaws.com.cn")
    }

    @Test func globalEndpointVariableAppliesToEveryService() throws {
        let c = try configuration(["AWS_ENDPOINT_URL": "http://localhost:4566"])
        #expect(c.endpoint(for: .secretsManager) == "http://localhost:4566")
        #expect(c.endpoint(for: .ssm) == "http://localhost:4566")
        #expect(c.endpoint(for: .sns) == "http://localhost:4566")
    }

    @Test func serviceVariableWinsOverTheGlobalOne() throws {
        let c = try configuration([
            "AWS_ENDPOINT_URL": "http://global:1",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm:2",
            "AWS_ENDPOINT_URL_SSM": "http://ssm:3",
            "AWS_ENDPOINT_URL_SNS": "http://sns:4",
        ])
        #expect(c.endpoint(for: .secretsManager) == "http://sm:2")
        #expect(c.endpoint(for: .ssm) == "http://ssm:3")
        #expect(c.endpoint(for: .sns) == "http://sns:4")
    }

    @Test func eachServiceVariableOnlyAffectsItsService() throws {
        let sm = try configuration(["AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm:2"])
        #expect(sm.endpoint(for: .secretsManager) == "http://sm:2")
        #expect(sm.endpoint(for: .ssm) == "https://ssm.us-east-1.amazonaws.com")
        #expect(sm.endpoint(for: .sns) == "https://sns.us-east-1.amazonaws.com")

        let ssm = try configuration(["AWS_ENDPOINT_URL_SSM": "http://ssm:3", "AWS_ENDPOINT_URL": "http://global:1"])
        #expect(ssm.endpoint(for: .ssm) == "http://ssm:3")
        #expect(ssm.endpoint(for: .secretsManager) == "http://global:1")
        #expect(ssm.endpoint(for: .sns) == "http://global:1")

        let sns = try configuration(["AWS_ENDPOINT_URL_SNS": "http://sns:4"])
        #expect(sns.endpoint(for: .sns) == "http://sns:4")
        #expect(sns.endpoint(for: .secretsManager) == "https://secretsmanager.us-east-1.amazonaws.com")
    }

    @Test func requestsGoToTheResolvedEndpoint() throws {
        var environment = baseEnvironment
        environment["AWS_ENDPOINT_URL"] = "http://127.0.0.1:4566"
        environment["AWS_ENDPOINT_URL_SSM"] = "http://127.0.0.1:5000"
        let harness = Harness([
            ok(#"{"ARN":"a","VersionIdsToStages":{}}"#),
            ok(#"{"CommandInvocations":[]}"#),
            ok("<PublishResponse><PublishResult><MessageId>m</MessageId></PublishResult></PublishResponse>"),
        ])
        _ = try harness.secretsManager(environment: environment).describeSecret("s")
        _ = try harness.ssm(environment: environment).listCommandInvocations(commandId: "c")
        try harness.sns(environment: environment).publish(topicArn: "t", subject: "s", message: "m")
        #expect(harness.requests.map(\.url) == ["http://127.0.0.1:4566", "http://127.0.0.1:5000", "http://127.0.0.1:4566"])
        #expect(harness.requests.map { $0.header("Host") } == ["127.0.0.1:4566", "127.0.0.1:5000", "127.0.0.1:4566"])
    }

    @Test func defaultEndpointIsUsedForRequests() throws {
        let harness = Harness([ok(#"{"ARN":"a"}"#)])
        _ = try harness.secretsManager().describeSecret("s")
        let request = try #require(harness.requests.first)
        #expect(URLPartsHost(request.url) == "secretsmanager.us-east-1.amazonaws.com")
        #expect(request.url.hasPrefix("https://secretsmanager.us-east-1.amazonaws.com"))
        #expect(request.header("Host") == "secretsmanager.us-east-1.amazonaws.com")
    }
}

/// The authority of `url` between `://` and the next `/`, written here so the test does not lean on URLParts.
func URLPartsHost(_ url: String) -> String? {
    guard let start = url.firstRange(of: "://") else { return nil }
    return String(url[start.upperBound...].prefix { $0 != "/" })
}

@Suite struct ConfigurationErrorTests {
    func problem(_ environment: [String: String]) -> AWSConfiguration.Problem? {
        do {
            _ = try AWSConfiguration(environment: environment)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
    func missingRequiredVariable(_ name: String) {
        var environment = baseEnvironment
        environment[name] = nil
        #expect(problem(environment) == .missing(name))
        environment[name] = ""
        #expect(problem(environment) == .missing(name))
    }

    @Test func descriptionNamesTheVariableAndNoSecret() throws {
        var environment = baseEnvironment
        environment["AWS_REGION"] = nil
        let error = try #require(problem(environment))
        #expect(error.description.contains("AWS_REGION"))
        #expect(!error.description.contains("wJalrXUtnFEMI"))
    }

    @Test(arguments: ["localhost:4566", "ftp://host/", "http://", "http://host:99999/"])
    func malformedEndpointIsAConfigurationProblem(_ url: String) {
        var environment = baseEnvironment
        environment["AWS_ENDPOINT_URL_SSM"] = url
        #expect(problem(environment) == .invalidEndpoint(url))
    }

    @Test func sessionTokenIsOptional() throws {
        var environment = baseEnvironment
        environment["AWS_SESSION_TOKEN"] = nil
        let configuration = try AWSConfiguration(environment: environment)
        #expect(configuration.region == "us-east-1")
        #expect(configuration.credentials.accessKeyId == "AKIDEXAMPLE")
        #expect(configuration.credentials.sessionToken == nil)
    }

    @Test func readsRegionAndCredentials() throws {
        let configuration = try AWSConfiguration(environment: baseEnvironment)
        #expect(configuration.region == "us-east-1")
        #expect(configuration.credentials.accessKeyId == "AKIDEXAMPLE")
        #expect(configuration.credentials.secretAccessKey == "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        #expect(configuration.credentials.sessionToken == "session-token-1")
    }
}
