import Testing
@testable import Operations

@Suite struct ArgumentTests {
    @Test func eachCommandTakesASecretIdAndJSON() throws {
        for command in OperatorCommandName.allCases {
            let parsed = try OperatorArguments.parse([command.rawValue, "--secret-id", "db/app", "--json"])
            #expect(parsed == OperatorArguments(command: command, secretId: "db/app", json: true, force: false))
        }
        let equals = try OperatorArguments.parse(["status", "--secret-id=arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"])
        #expect(equals.secretId == "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf")
        #expect(equals.json == false)
    }

    @Test func forceIsForCancelOnly() throws {
        #expect(try OperatorArguments.parse(["cancel", "--force", "--secret-id", "s"]).force)
        #expect(throws: OperatorArguments.Problem.usage("unexpected argument \"--force\"")) {
            try OperatorArguments.parse(["status", "--force", "--secret-id", "s"])
        }
    }

    @Test func badInputIsAUsageErrorNamingTheProblem() {
        let cases: [([String], String)] = [
            ([], "no command given"),
            (["rotate", "--secret-id", "s"], "unknown command \"rotate\""),
            (["status"], "--secret-id is required"),
            (["status", "--secret-id"], "--secret-id needs a value"),
            (["status", "--secret-id="], "--secret-id is required"),
            (["doctor", "--secret-id", "s", "extra"], "unexpected argument \"extra\""),
            (["doctor", "--secret-id", "a\nb"], "--secret-id is too long or holds control characters"),
        ]
        for (arguments, message) in cases {
            #expect(throws: OperatorArguments.Problem.usage(message), "\(arguments)") { try OperatorArguments.parse(arguments) }
        }
    }

    @Test func helpAnywhereAsksForUsage() {
        for arguments in [["--help"], ["-h"], ["help"], ["status", "--secret-id", "s", "--help"]] {
            #expect(throws: OperatorArguments.Problem.help) { try OperatorArguments.parse(arguments) }
        }
        #expect(OperatorArguments.usage.contains("status"))
        #expect(OperatorArguments.usage.contains("AWS_ACCESS_KEY_ID"))
    }
}
