import RotatorJSON
import Testing
@testable import Rotation

/// The alternating-users strategy as the function sees it: `masterarn` in the secret makes each
/// pending version name the other login of the pair; without it nothing changes.
@Suite struct AlternatingUsersTests {
    static let masterArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/admin-XyZ123"

    static func secret(engine: String = "postgres", username: String, masterarn: String? = masterArn) -> String {
        let master = masterarn.map { #","masterarn":"\#($0)""# } ?? ""
        return #"{"engine":"\#(engine)","host":"db","username":"\#(username)","password":"p","instanceIds":["i-0123456789abcdef0"]\#(master),"owner":"team-a"}"#
    }

    /// A world whose AWSCURRENT is `current`, run through createSecret; the pending version's JSON.
    func pendingAfterCreate(_ current: String) throws -> JSON {
        let w = World()
        w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.secretString = current
        try w.createPendingVersion()
        return try JSON.parse(try #require(w.secrets.versions[token]?.secretString))
    }

    @Test func theCloneIsNamedAfterTheLoginAndBack() throws {
        let first = try pendingAfterCreate(Self.secret(username: "app"))
        #expect(first["username"]?.stringValue == "app_clone")
        #expect(first["masterarn"]?.stringValue == Self.masterArn)
        #expect(first["owner"]?.stringValue == "team-a")
        #expect(first["password"]?.stringValue != "p")

        let second = try pendingAfterCreate(Self.secret(username: "app_clone"))
        #expect(second["username"]?.stringValue == "app")
        #expect(second["password"]?.stringValue != "p")
    }

    @Test func withoutMasterArnTheLoginStaysTheSame() throws {
        for username in ["app", "app_clone"] {
            let pending = try pendingAfterCreate(Self.secret(username: username, masterarn: nil))
            #expect(pending["username"]?.stringValue == username)
            #expect(pending["masterarn"] == nil)
        }
    }

    @Test func onlyPasswordAndUsernameChange() throws {
        let current = try JSON.parse(Self.secret(username: "app"))
        let pending = try pendingAfterCreate(Self.secret(username: "app"))
        #expect(pending.objectValue!.map(\.0) == current.objectValue!.map(\.0))
        #expect(pending.setting("password", to: .string("p")).setting("username", to: .string("app")) == current)
    }

    // The longest name whose clone still fits, and one more.
    @Test(arguments: [
        ("postgres", String(repeating: "a", count: 57), true),
        ("postgres", String(repeating: "a", count: 58), false),
        // PostgreSQL counts bytes: 28 two-byte letters and "_clone" make 62 bytes; 29 make 64.
        ("postgres", String(repeating: "é", count: 28), true),
        ("postgres", String(repeating: "é", count: 29), false),
        ("mysql", String(repeating: "a", count: 26), true),
        ("mysql", String(repeating: "a", count: 27), false),
        ("mariadb", String(repeating: "é", count: 26), true),
        ("mariadb", String(repeating: "a", count: 27), false),
        // SQL Server's sysname counts UTF-16 code units: 61 "𝄞" (two each) and "_clone" make 128.
        ("sqlserver", String(repeating: "a", count: 122), true),
        ("sqlserver", String(repeating: "a", count: 123), false),
        ("sqlserver", String(repeating: "𝄞", count: 61), true),
        ("sqlserver", String(repeating: "𝄞", count: 62), false),
    ])
    func theCloneNameMustFitTheEngine(engine: String, username: String, fits: Bool) throws {
        let w = World()
        w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.secretString = Self.secret(engine: engine, username: username)
        w.secrets.startRotation(token: token)
        if fits {
            try w.run(.createSecret)
            #expect(w.secrets.calls.contains("PutSecretValue"))
        } else {
            do {
                try w.run(.createSecret)
                Issue.record("accepted a clone name that is too long for \(engine)")
            } catch {
                #expect(error.errorType == "InvalidSecret")
                #expect(error.description.contains("_clone"), "\(error.description)")
                #expect(error.description.contains("allows"), "\(error.description)")
            }
            #expect(!w.secrets.calls.contains("PutSecretValue"))
            #expect(!w.secrets.calls.contains("GetRandomPassword"))
            #expect(w.pendingPassword() == nil)
        }
    }

    // The clone is a SQL Server login like the login itself; DOMAIN\name is a Windows account.
    @Test func aWindowsAccountCannotAlternateOnSQLServer() throws {
        let w = World()
        w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.secretString = Self.secret(engine: "sqlserver", username: #"CORP\\app"#)
        w.secrets.startRotation(token: token)
        do {
            try w.run(.createSecret)
            Issue.record("accepted a Windows account for alternating users on SQL Server")
        } catch {
            #expect(error.errorType == "InvalidSecret")
            #expect(error.description.contains("Windows account"), "\(error.description)")
        }
        #expect(!w.secrets.calls.contains("PutSecretValue"))
        #expect(w.pendingPassword() == nil)
        // Without masterarn the name goes to the host unchanged, which answers for it.
        w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.secretString = Self.secret(engine: "sqlserver", username: #"CORP\\app"#, masterarn: nil)
        try w.run(.createSecret)
        #expect(w.secrets.calls.contains("PutSecretValue"))
    }

    @Test func theCloneOfALongCloneIsShorterAndAlwaysFits() throws {
        let pending = try pendingAfterCreate(Self.secret(engine: "mysql", username: String(repeating: "a", count: 26) + "_clone"))
        #expect(pending["username"]?.stringValue == String(repeating: "a", count: 26))
    }

    @Test(arguments: [
        (#""masterarn":"db/admin""#, "not the ARN of a secret"),
        (#""masterarn":"arn:aws:iam::123456789012:role/admin""#, "not the ARN of a secret"),
        (#""masterarn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:x; rm -rf /""#, "not the ARN of a secret"),
        (#""masterarn":42"#, "not the ARN of a secret"),
        (#""masterarn":"""#, "not the ARN of a secret"),
        // The secret itself, by its full ARN and by its partial ARN (no random suffix).
        (#""masterarn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db/app-AbCdEf""#, "names the secret itself"),
        (#""masterarn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db/app""#, "names the secret itself"),
    ])
    func aBadMasterArnIsRefusedBeforeAnythingIsWritten(field: String, expected: String) {
        let w = World()
        w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.secretString =
            #"{"engine":"postgres","host":"db","username":"app","password":"p","instanceIds":["i-0123456789abcdef0"],"# + field + "}"
        w.secrets.startRotation(token: token)
        do {
            try w.run(.createSecret)
            Issue.record("accepted \(field)")
        } catch {
            #expect(error.errorType == "InvalidSecret")
            #expect(error.description.contains(expected), "\(error.description)")
        }
        #expect(!w.secrets.calls.contains("PutSecretValue"))
    }

    @Test func aBadMasterArnInThePendingVersionStopsSetSecretBeforeAnyCommand() throws {
        let w = World()
        w.secrets.startRotation(token: token)
        w.secrets.versions[token]!.secretString = Self.secret(username: "app_clone", masterarn: "not-an-arn")
        let error = try #require(w.failure(of: .setSecret))
        #expect(error.errorType == "InvalidSecret")
        #expect(error.description.contains("AWSPENDING"))
        #expect(w.ssm.sent.isEmpty)
    }

    @Test func aFullAlternatingRotationRunsTheSameHostCommands() throws {
        let w = World()
        w.secrets.versions["00000000-0000-0000-0000-00000000000a"]!.secretString = Self.secret(username: "app")
        w.secrets.startRotation(token: token)
        for step in RotationStep.allCases { try w.run(step) }
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.ssm.sent.count == 3)  // set, verify, then finishSecret's settle
        #expect(w.lines.lines.contains { $0.contains("alternating-users") && $0.contains("app_clone") })
    }
}
