import RotatorJSON
import Testing
@testable import Rotation

/// Whoever may write a secret version must not thereby choose what the function acts on: the
/// pending version names AWSCURRENT's login (or, with alternating users, its alternate), and
/// AWSCURRENT's masterarn, engine, host and instances, or no host command is sent. And a secret
/// naming a field twice (which this function and the host's Python would read differently) is
/// refused wherever it is read.
@Suite struct PendingVersionGuardTests {
    static let currentId = "00000000-0000-0000-0000-00000000000a"
    static let masterArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/admin-XyZ123"
    static let otherMasterArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/other-admin-QwE456"
    static let pendingPassword = "pending-Password-2"

    /// The World's AWSCURRENT (username app, instances A and B, postgres), changed by `current`; and a
    /// pending version written by hand: AWSCURRENT's fields with a new password, then `pending`.
    func world(current: (JSON) -> JSON = { $0 }, pending: (JSON) -> JSON) throws -> World {
        let w = World()
        let stored = try JSON.parse(try #require(w.secrets.versions[Self.currentId]?.secretString))
        let currentJSON = current(stored)
        w.secrets.versions[Self.currentId]!.secretString = currentJSON.serialized
        w.secrets.startRotation(token: token)
        w.secrets.versions[token]!.secretString = pending(currentJSON.setting("password", to: .string(Self.pendingPassword))).serialized
        return w
    }

    /// Runs `step`, which must fail with InvalidSecret naming `field`, before any host command.
    func expectRefusedBeforeAnyCommand(_ w: World, _ step: RotationStep, naming expected: [String],
                                       sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try w.run(step)
            Issue.record("\(step) accepted the pending version", sourceLocation: sourceLocation)
        } catch {
            #expect(error.errorType == "InvalidSecret", "\(error)", sourceLocation: sourceLocation)
            for text in expected {
                #expect(error.description.contains(text), "\(error.description)", sourceLocation: sourceLocation)
            }
            #expect(!error.description.contains(Self.pendingPassword) && !error.description.contains(oldPassword),
                    sourceLocation: sourceLocation)
        }
        #expect(w.ssm.sent.isEmpty, "a host command was sent", sourceLocation: sourceLocation)
        #expect(w.ssm.hosts[instanceA]?.password == oldPassword, sourceLocation: sourceLocation)
        #expect(w.ssm.hosts[instanceB]?.password == oldPassword, sourceLocation: sourceLocation)
        #expect(!w.secrets.calls.contains("PutSecretValue"), sourceLocation: sourceLocation)
        #expect(!w.secrets.calls.contains("UpdateSecretVersionStage"), sourceLocation: sourceLocation)
        let logs = w.lines.lines.joined(separator: "\n")
        #expect(!logs.contains(Self.pendingPassword) && !logs.contains(oldPassword), sourceLocation: sourceLocation)
    }

    static let hostSteps: [RotationStep] = [.setSecret, .testSecret]

    // MARK: Single user

    @Test(arguments: hostSteps)
    func aPendingVersionNamingPostgresSendsNothing(step: RotationStep) throws {
        let w = try world(pending: { $0.setting("username", to: .string("postgres")) })
        expectRefusedBeforeAnyCommand(w, step, naming: [#""username""#, #""postgres""#, #""app""#, "AWSPENDING"])
    }

    @Test func createSecretDoesNotKeepAPendingVersionNamingAnotherLogin() throws {
        let w = try world(pending: { $0.setting("username", to: .string("postgres")) })
        expectRefusedBeforeAnyCommand(w, .createSecret, naming: [#""username""#, #""postgres""#])
        #expect(!w.secrets.calls.contains("GetRandomPassword"))
    }

    @Test func createSecretDoesNotKeepAnotherCopysVersionForAnotherTarget() throws {
        // PutSecretValue meets a value already stored under the token, which names other hosts.
        let w = World()
        w.secrets.startRotation(token: token)
        let stored = try JSON.parse(try #require(w.secrets.versions[Self.currentId]?.secretString))
        w.secrets.meanwhile = ("PutSecretValue", {
            w.secrets.versions[token]?.secretString = stored.setting("password", to: .string(Self.pendingPassword))
                .setting("instanceIds", to: .array([.string("i-0aaaaaaaaaaaaaaa1")])).serialized
        })
        do {
            try w.run(.createSecret)
            Issue.record("kept a pending version naming other hosts")
        } catch {
            #expect(error.errorType == "InvalidSecret")
            #expect(error.description.contains(#""instanceIds""#), "\(error.description)")
        }
        #expect(w.ssm.sent.isEmpty)
    }

    @Test func aUsernameEqualOnlyUnderUnicodeNormalizationIsAnotherLogin() throws {
        // "café" precomposed in AWSCURRENT, decomposed in AWSPENDING: Swift's == calls them equal,
        // the database (and the host script) compare bytes.
        let w = try world(current: { $0.setting("username", to: .string("caf\u{E9}")) },
                          pending: { $0.setting("username", to: .string("cafe\u{301}")) })
        expectRefusedBeforeAnyCommand(w, .setSecret, naming: [#""username""#])
    }

    @Test(arguments: hostSteps)
    func aPendingVersionWithAMasterArnAddedSendsNothing(step: RotationStep) throws {
        // AWSCURRENT is single user; the pending version would switch the host to alternating users
        // run as the administrator the writer chose.
        let w = try world(pending: { $0.setting("masterarn", to: .string(Self.masterArn)).setting("username", to: .string("app_clone")) })
        expectRefusedBeforeAnyCommand(w, step, naming: [#""masterarn""#, Self.masterArn])
    }

    @Test(arguments: hostSteps)
    func aPendingVersionNamingOtherInstancesSendsNothing(step: RotationStep) throws {
        for ids in [[instanceB], [instanceA, instanceB, "i-0aaaaaaaaaaaaaaa1"], ["i-0aaaaaaaaaaaaaaa1"]] {
            let w = try world(pending: { $0.setting("instanceIds", to: .array(ids.map(JSON.string))) })
            expectRefusedBeforeAnyCommand(w, step, naming: [#""instanceIds""#])
        }
    }

    @Test(arguments: hostSteps)
    func aPendingVersionNamingAnotherEngineSendsNothing(step: RotationStep) throws {
        // mysql has a document configured in the World: the writer would choose which document runs.
        for engine in ["mysql", "postgresql", "POSTGRES"] {
            let w = try world(pending: { $0.setting("engine", to: .string(engine)) })
            expectRefusedBeforeAnyCommand(w, step, naming: [#""engine""#])
        }
    }

    @Test func aPendingVersionNamingAnotherDatabaseHostSendsNothing() throws {
        let w = try world(pending: { $0.setting("host", to: .string("other-db.internal")) })
        expectRefusedBeforeAnyCommand(w, .setSecret, naming: [#""host""#, "other-db.internal"])
    }

    @Test func aPendingVersionWithTheSameTargetProceeds() throws {
        // Fields the function does not act on (port, dbname, owner's own fields) may differ.
        let w = try world(pending: { $0.setting("owner", to: .string("team-b")) })
        try w.run(.setSecret)
        try w.run(.testSecret)
        #expect(w.ssm.sent.count == 2)
        #expect(w.ssm.hosts[instanceA]?.password == Self.pendingPassword)
    }

    // MARK: Alternating users

    func alternating(_ username: String, masterarn: String = masterArn) -> (JSON) -> JSON {
        { $0.setting("masterarn", to: .string(masterarn)).setting("username", to: .string(username)) }
    }

    @Test(arguments: hostSteps)
    func alternatingUsersRefuseAnyLoginButTheAlternate(step: RotationStep) throws {
        for (current, pending) in [("app", "postgres"), ("app", "app"), ("app", "app_clone_clone"), ("app_clone", "app_clone"),
                                   ("app_clone", "postgres"), ("app_clone", "app_clone_clone"), ("app", "App_clone")] {
            let w = try world(current: alternating(current), pending: alternating(pending))
            expectRefusedBeforeAnyCommand(w, step, naming: [#""username""#, "\"\(pending)\"", "\"\(current)\""])
        }
    }

    @Test(arguments: [("app", "app_clone"), ("app_clone", "app")])
    func alternatingUsersAcceptTheAlternate(current: String, pending: String) throws {
        let w = try world(current: alternating(current), pending: alternating(pending))
        try w.run(.setSecret)
        #expect(w.ssm.sent.count == 1)
    }

    @Test(arguments: hostSteps)
    func aPendingVersionWithAnotherMasterArnSendsNothing(step: RotationStep) throws {
        let w = try world(current: alternating("app"), pending: alternating("app_clone", masterarn: Self.otherMasterArn))
        expectRefusedBeforeAnyCommand(w, step, naming: [#""masterarn""#, Self.masterArn, Self.otherMasterArn])
        // Removed from the pending version: back to single user on the alternate login.
        let removed = try world(current: alternating("app"), pending: {
            JSON.object(($0.objectValue ?? []).filter { $0.0 != "masterarn" }).setting("username", to: .string("app_clone"))
        })
        expectRefusedBeforeAnyCommand(removed, step, naming: [#""masterarn""#])
    }

    // MARK: Duplicate fields

    static let attack = #"{"username":"app","password":"x","engine":"postgres","host":"db.internal","instanceIds":["i-0123456789abcdef0","i-0fedcba9876543210"],"username":"postgres","password":"KNOWN"}"#

    @Test(arguments: hostSteps)
    func aPendingVersionNamingUsernameTwiceSendsNothing(step: RotationStep) throws {
        let w = try world(pending: { _ in try! JSON.parse(#"{"a":1}"#) })
        w.secrets.versions[token]!.secretString = Self.attack
        expectRefusedBeforeAnyCommand(w, step, naming: ["AWSPENDING", "duplicate member name \"username\""])
        #expect(!w.lines.lines.joined().contains("KNOWN"))
    }

    @Test func anAWSCURRENTNamingUsernameTwiceWritesNothing() throws {
        let w = World()
        w.secrets.versions[Self.currentId]!.secretString = Self.attack
        w.secrets.startRotation(token: token)
        do {
            try w.run(.createSecret)
            Issue.record("accepted")
        } catch {
            #expect(error.errorType == "InvalidSecret")
            #expect(error.description.contains("AWSCURRENT") && error.description.contains("duplicate member name \"username\""),
                    "\(error.description)")
            #expect(!error.description.contains("KNOWN"))
        }
        #expect(!w.secrets.calls.contains("GetRandomPassword"))
        #expect(!w.secrets.calls.contains("PutSecretValue"))
        #expect(w.ssm.sent.isEmpty)
    }
}
