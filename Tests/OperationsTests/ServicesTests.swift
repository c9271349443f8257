import AWS
import HTTP
import Testing
@testable import Operations

final class NoNetwork: HTTPClient {
    func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse {
        throw TransportError(code: 7, message: "no network in unit tests", isTimeout: false)
    }
}

final class RecordingFunctions: FunctionConfigurationAPI {
    var asked: [String] = []
    func getFunctionConfiguration(_ functionName: String) throws(AWSError) -> FunctionSettings {
        asked.append(functionName)
        return FunctionSettings(functionArn: "arn:f", environment: ["POSTGRES_DOCUMENT": "DocP", "MYSQL_DOCUMENT": ""],
                                logGroup: "/aws/lambda/\(functionName)")
    }
}

@Suite struct ServicesTests {
    let credentials = ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"]

    @Test func theRegionMayComeFromAWSDefaultRegion() throws {
        _ = try OperatorServices.fromEnvironment(credentials.merging(["AWS_DEFAULT_REGION": "eu-west-1"]) { $1 },
                                                 http: NoNetwork(), clock: SystemClock())
        #expect(throws: AWSConfiguration.Problem.missing("AWS_REGION")) {
            try OperatorServices.fromEnvironment(credentials, http: NoNetwork(), clock: SystemClock())
        }
        #expect(throws: AWSConfiguration.Problem.missing("AWS_ACCESS_KEY_ID")) {
            try OperatorServices.fromEnvironment(["AWS_REGION": "eu-west-1"], http: NoNetwork(), clock: SystemClock())
        }
    }

    @Test func theRotationFunctionIsAskedForByNameAndItsDocumentsRead() throws {
        let functions = RecordingFunctions()
        let real = try OperatorServices.fromEnvironment(credentials.merging(["AWS_REGION": "us-east-1"]) { $1 },
                                                        http: NoNetwork(), clock: SystemClock())
        let services = OperatorServices(secrets: real.secrets, ssm: real.ssm, functions: functions, logs: real.logs, clock: real.clock)
        let settings = try services.rotationFunction("arn:aws:lambda:us-east-1:123456789012:function:my-rotator")
        _ = try services.rotationFunction("arn:aws:lambda:us-east-1:123456789012:function:my-rotator:live")
        _ = try services.rotationFunction("plain-name")
        #expect(functions.asked == ["my-rotator", "my-rotator", "plain-name"])
        #expect(services.documents(of: settings) == [.postgres: "DocP"])
    }
}
