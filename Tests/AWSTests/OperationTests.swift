import AWS
import HTTP
import RotatorJSON
import RotatorTestSupport
import Testing

@Suite struct SecretsManagerOperationTests {
    @Test func describeSecretParsesTheDescription() throws {
        let harness = Harness([ok("""
            {"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf","Name":"prod/db",
             "RotationEnabled":true,"RotationLambdaARN":"arn:aws:lambda:us-east-1:123456789012:function:rotator",
             "VersionIdsToStages":{"v-1":["AWSPREVIOUS"],"v-2":["AWSCURRENT"],"v-3":["AWSPENDING"]},
             "LastRotatedDate":1.523477145713E9}
            """)])
        let secret = try harness.secretsManager().describeSecret("prod/db")
        #expect(secret.arn == "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf")
        #expect(secret.rotationEnabled == true)
        #expect(secret.versionIdsToStages == ["v-1": ["AWSPREVIOUS"], "v-2": ["AWSCURRENT"], "v-3": ["AWSPENDING"]])
        #expect(secret.version(holding: "AWSCURRENT") == "v-2")
        #expect(secret.version(holding: "AWSPENDING") == "v-3")
        #expect(secret.version(holding: "CUSTOM") == nil)
    }

    @Test func rotationEnabledAbsentIsNilNotFalse() throws {
        let harness = Harness([ok(#"{"ARN":"arn:x","VersionIdsToStages":{"v":["AWSCURRENT","CUSTOM"]}}"#),
                               ok(#"{"ARN":"arn:x","RotationEnabled":false}"#)])
        let client = try harness.secretsManager()
        let absent = try client.describeSecret("s")
        #expect(absent.rotationEnabled == nil)
        #expect(absent.versionIdsToStages == ["v": ["AWSCURRENT", "CUSTOM"]])
        let disabled = try client.describeSecret("s")
        #expect(disabled.rotationEnabled == false)
        #expect(disabled.versionIdsToStages.isEmpty)
    }

    @Test func describeSecretWithoutARNIsMalformed() throws {
        let harness = Harness([ok(#"{"Name":"x"}"#)])
        let client = try harness.secretsManager()
        let error = caught { () throws(AWSError) in _ = try client.describeSecret("s") }
        guard case .malformedResponse(let operation, _) = error else {
            Issue.record("expected malformedResponse, got \(String(describing: error))")
            return
        }
        #expect(operation == "DescribeSecret")
    }

    @Test func getSecretValueByVersionIdAndStageSendsBoth() throws {
        let harness = Harness([ok(#"{"ARN":"arn:x","Name":"n","VersionId":"tok-1","SecretString":"{\"password\":\"p\"}","VersionStages":["AWSPENDING"]}"#)])
        let value = try harness.secretsManager().getSecretValue("prod/db", .versionId("tok-1", stage: "AWSPENDING"))
        let request = try #require(harness.requests.first)
        #expect(request.header("X-Amz-Target") == "secretsmanager.GetSecretValue")
        let body = try #require(request.bodyJSON)
        #expect(body["SecretId"] == .string("prod/db"))
        #expect(body["VersionId"] == .string("tok-1"))
        #expect(body["VersionStage"] == .string("AWSPENDING"))
        #expect(body.objectValue?.count == 3)
        #expect(value.arn == "arn:x")
        #expect(value.versionId == "tok-1")
        #expect(value.secretString == #"{"password":"p"}"#)
    }

    @Test func getSecretValueByStageOnly() throws {
        let harness = Harness([ok(#"{"ARN":"arn:x","VersionId":"v-2","SecretString":"s"}"#)])
        _ = try harness.secretsManager().getSecretValue("prod/db", .stage("AWSCURRENT"))
        let body = try #require(harness.requests.first?.bodyJSON)
        #expect(body["VersionStage"] == .string("AWSCURRENT"))
        #expect(body["VersionId"] == nil)
    }

    @Test func getSecretValueByVersionIdOnly() throws {
        let harness = Harness([ok(#"{"ARN":"arn:x","VersionId":"v-2"}"#)])
        let value = try harness.secretsManager().getSecretValue("prod/db", .versionId("v-2", stage: nil))
        let body = try #require(harness.requests.first?.bodyJSON)
        #expect(body["VersionId"] == .string("v-2"))
        #expect(body["VersionStage"] == nil)
        // A binary secret has no SecretString.
        #expect(value.secretString == nil)
    }

    @Test func putSecretValueWithoutRotationToken() throws {
        let harness = Harness([ok(#"{"ARN":"arn:x","Name":"n","VersionId":"tok-1","VersionStages":["AWSPENDING"]}"#)])
        try harness.secretsManager().putSecretValue("prod/db", clientRequestToken: "tok-1", secretString: #"{"password":"new"}"#,
                                                     stages: ["AWSPENDING"], rotationToken: nil)
        let request = try #require(harness.requests.first)
        #expect(request.header("X-Amz-Target") == "secretsmanager.PutSecretValue")
        let body = try #require(request.bodyJSON)
        #expect(body["SecretId"] == .string("prod/db"))
        #expect(body["ClientRequestToken"] == .string("tok-1"))
        #expect(body["SecretString"] == .string(#"{"password":"new"}"#))
        #expect(body["VersionStages"] == .array([.string("AWSPENDING")]))
        #expect(body["RotationToken"] == nil)
        #expect(!request.bodyText.contains("RotationToken"))
    }

    @Test func putSecretValueWithRotationToken() throws {
        let harness = Harness([ok(#"{"ARN":"arn:x","VersionId":"tok-1"}"#)])
        try harness.secretsManager().putSecretValue("prod/db", clientRequestToken: "tok-1", secretString: "s",
                                                     stages: ["AWSPENDING"], rotationToken: "rot-token-9")
        let body = try #require(harness.requests.first?.bodyJSON)
        #expect(body["RotationToken"] == .string("rot-token-9"))
        #expect(body["VersionStages"] == .array([.string("AWSPENDING")]))
    }

    @Test func putSecretValueFailureDescriptionDoesNotCarryTheSecret() throws {
        let secret = #"{"username":"app","password":"S3cr3t-P@ss-hunter2"}"#
        for step in [jsonError(400, "ValidationException", message: "Invalid input"), transportFailure(),
                     ok("not json at all")] {
            let harness = Harness([step, step, step])
            let client = try harness.secretsManager()
            let error = try #require(caught { () throws(AWSError) in
                try client.putSecretValue("prod/db", clientRequestToken: "tok-1", secretString: secret,
                                          stages: ["AWSPENDING"], rotationToken: "rot-token-9")
            })
            #expect(error.description.contains("PutSecretValue"))
            #expect(!error.description.contains("S3cr3t"))
            #expect(!error.description.contains("hunter2"))
            #expect(!error.description.contains("rot-token-9"))
            #expect(!String(reflecting: error).contains("S3cr3t"))
        }
    }

    @Test func updateSecretVersionStage() throws {
        let harness = Harness([ok(#"{"ARN":"arn:x","Name":"n"}"#), ok("{}")])
        let client = try harness.secretsManager()
        try client.updateSecretVersionStage("prod/db", stage: "AWSCURRENT", moveTo: "tok-1", removeFrom: "v-2")
        try client.updateSecretVersionStage("prod/db", stage: "AWSPENDING", moveTo: nil, removeFrom: "tok-1")
        #expect(harness.requests.map { $0.header("X-Amz-Target") } == ["secretsmanager.UpdateSecretVersionStage", "secretsmanager.UpdateSecretVersionStage"])
        let first = try #require(harness.requests[0].bodyJSON)
        #expect(first["SecretId"] == .string("prod/db"))
        #expect(first["VersionStage"] == .string("AWSCURRENT"))
        #expect(first["MoveToVersionId"] == .string("tok-1"))
        #expect(first["RemoveFromVersionId"] == .string("v-2"))
        let second = try #require(harness.requests[1].bodyJSON)
        #expect(second["MoveToVersionId"] == nil)
        #expect(second["RemoveFromVersionId"] == .string("tok-1"))
    }

    @Test func getRandomPassword() throws {
        let harness = Harness([ok(#"{"RandomPassword":"Ab1!xyz"}"#), ok(#"{"RandomPassword":"q"}"#)])
        let client = try harness.secretsManager()
        let password = try client.getRandomPassword(PasswordRequest(length: 32, excludeCharacters: "\"'$;|&()<>`\\",
                                                                    requireEachIncludedType: true))
        #expect(password == "Ab1!xyz")
        let body = try #require(harness.requests[0].bodyJSON)
        #expect(harness.requests[0].header("X-Amz-Target") == "secretsmanager.GetRandomPassword")
        #expect(body["PasswordLength"]?.intValue == 32)
        #expect(body["ExcludeCharacters"] == .string("\"'$;|&()<>`\\"))
        #expect(body["RequireEachIncludedType"] == .bool(true))
        _ = try client.getRandomPassword(PasswordRequest(length: 20, excludeCharacters: "", requireEachIncludedType: false))
        let second = try #require(harness.requests[1].bodyJSON)
        #expect(second["ExcludeCharacters"] == nil)
        #expect(second["RequireEachIncludedType"] == .bool(false))
    }

    @Test func getRandomPasswordWithoutPasswordIsMalformed() throws {
        let harness = Harness([ok("{}")])
        let client = try harness.secretsManager()
        let error = caught { () throws(AWSError) in
            _ = try client.getRandomPassword(PasswordRequest(length: 20, excludeCharacters: "", requireEachIncludedType: true))
        }
        guard case .malformedResponse = error else {
            Issue.record("expected malformedResponse, got \(String(describing: error))")
            return
        }
    }
}

@Suite struct SSMOperationTests {
    @Test func sendCommandBody() throws {
        let harness = Harness([ok(#"{"Command":{"CommandId":"0831e1a8-a1ac-4257-a1fd-c831bEXAMPLE","DocumentName":"AWS-RunShellScript","Status":"Pending"}}"#)])
        let id = try harness.ssm().sendCommand(SendCommandInput(
            documentName: "AWS-RunShellScript", instanceIds: ["i-0123456789abcdef0", "i-1"],
            parameters: [("commands", ["set -e", "echo ok"]), ("executionTimeout", ["600"])],
            comment: "rotate prod/db setSecret", timeoutSeconds: 60))
        #expect(id == "0831e1a8-a1ac-4257-a1fd-c831bEXAMPLE")
        let request = try #require(harness.requests.first)
        #expect(request.header("X-Amz-Target") == "AmazonSSM.SendCommand")
        let body = try #require(request.bodyJSON)
        #expect(body["DocumentName"] == .string("AWS-RunShellScript"))
        #expect(body["InstanceIds"] == .array([.string("i-0123456789abcdef0"), .string("i-1")]))
        let parameters = try #require(body["Parameters"])
        #expect(parameters.objectValue?.count == 2)
        #expect(parameters["commands"] == .array([.string("set -e"), .string("echo ok")]))
        #expect(parameters["executionTimeout"] == .array([.string("600")]))
        #expect(body["Comment"] == .string("rotate prod/db setSecret"))
        #expect(body["TimeoutSeconds"]?.intValue == 60)
        #expect(body["DocumentVersion"] == nil)   // none named: SSM runs the default version
    }

    @Test func sendCommandNamesTheDocumentVersionWhenGiven() throws {
        let harness = Harness([ok(#"{"Command":{"CommandId":"c-1"}}"#)])
        _ = try harness.ssm().sendCommand(SendCommandInput(
            documentName: "Stack-Postgres-1", documentVersion: "3", instanceIds: ["i-1"], parameters: [("Action", ["verify"])],
            comment: "rotator doctor: verify AWSCURRENT", timeoutSeconds: 180))
        let body = try #require(harness.requests.first?.bodyJSON)
        #expect(body["DocumentName"] == .string("Stack-Postgres-1"))
        #expect(body["DocumentVersion"] == .string("3"))
        #expect(body["Parameters"]?["Action"] == .array([.string("verify")]))
    }

    @Test func sendCommandWithoutCommandIdIsMalformed() throws {
        let harness = Harness([ok(#"{"Command":{}}"#)])
        let client = try harness.ssm()
        let error = caught { () throws(AWSError) in
            _ = try client.sendCommand(SendCommandInput(documentName: "d", instanceIds: ["i"], parameters: [], comment: "", timeoutSeconds: 30))
        }
        guard case .malformedResponse(let operation, _) = error else {
            Issue.record("expected malformedResponse, got \(String(describing: error))")
            return
        }
        #expect(operation == "SendCommand")
    }

    @Test func getCommandInvocationMapsFields() throws {
        let harness = Harness([ok("""
            {"CommandId":"c-1","InstanceId":"i-1","DocumentName":"AWS-RunShellScript","Status":"Failed",
             "StatusDetails":"Failed","ResponseCode":2,"StandardOutputContent":"out\\n","StandardErrorContent":"err"}
            """)])
        let invocation = try harness.ssm().getCommandInvocation(commandId: "c-1", instanceId: "i-1")
        #expect(invocation == CommandInvocation(status: "Failed", statusDetails: "Failed", responseCode: 2,
                                                standardOutput: "out\n", standardError: "err"))
        #expect(invocation.isFinished)
        let request = try #require(harness.requests.first)
        #expect(request.header("X-Amz-Target") == "AmazonSSM.GetCommandInvocation")
        #expect(request.bodyJSON?["CommandId"] == .string("c-1"))
        #expect(request.bodyJSON?["InstanceId"] == .string("i-1"))
    }

    @Test func responseCodeDefaultsToMinusOne() throws {
        let harness = Harness([ok(#"{"CommandId":"c-1","InstanceId":"i-1","Status":"InProgress","StatusDetails":"InProgress"}"#)])
        let invocation = try harness.ssm().getCommandInvocation(commandId: "c-1", instanceId: "i-1")
        #expect(invocation.responseCode == -1)
        #expect(invocation.status == "InProgress")
        #expect(invocation.standardOutput == "")
        #expect(invocation.standardError == "")
        #expect(!invocation.isFinished)
    }

    @Test func invocationDoesNotExistIsAServiceError() throws {
        let harness = Harness([jsonError(400, "InvocationDoesNotExist", message: "")])
        let client = try harness.ssm()
        let error = caught { () throws(AWSError) in _ = try client.getCommandInvocation(commandId: "c", instanceId: "i") }
        #expect(error?.isServiceError("InvocationDoesNotExist") == true)
        #expect(harness.requests.count == 1)
    }

    @Test(arguments: [("Pending", false), ("InProgress", false), ("Delayed", false), ("Cancelling", false),
                      ("Success", true), ("Cancelled", true), ("TimedOut", true), ("Failed", true)])
    func finishedStatuses(_ status: String, _ finished: Bool) {
        #expect(CommandInvocation(status: status, statusDetails: status, responseCode: -1, standardOutput: "", standardError: "").isFinished == finished)
    }

    @Test func listCommandInvocations() throws {
        let harness = Harness([
            ok(#"{"CommandInvocations":[{"CommandId":"c-1","InstanceId":"i-1","Status":"Success"},{"CommandId":"c-1","InstanceId":"i-2","Status":"InProgress"}]}"#),
            ok(#"{"CommandInvocations":[]}"#),
        ])
        let client = try harness.ssm()
        #expect(try client.listCommandInvocations(commandId: "c-1") == ["i-1": "Success", "i-2": "InProgress"])
        #expect(try client.listCommandInvocations(commandId: "c-1").isEmpty)
        #expect(harness.requests[0].header("X-Amz-Target") == "AmazonSSM.ListCommandInvocations")
        #expect(harness.requests[0].bodyJSON?["CommandId"] == .string("c-1"))
    }

    @Test func cancelCommand() throws {
        let harness = Harness([ok("{}")])
        try harness.ssm().cancelCommand(commandId: "c-1", instanceIds: ["i-1", "i-2"])
        let request = try #require(harness.requests.first)
        #expect(request.header("X-Amz-Target") == "AmazonSSM.CancelCommand")
        let body = try #require(request.bodyJSON)
        #expect(body["CommandId"] == .string("c-1"))
        #expect(body["InstanceIds"] == .array([.string("i-1"), .string("i-2")]))
    }
}
