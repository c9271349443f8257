import RotatorJSON
import Testing
@testable import Rotation

/// The shared layout (one function for a fleet of secrets, docs/deploying.md "Deploying a fleet"):
/// the documents cannot pin a login, so each secret's RotatorLogin tag does, and only the secret's
/// administrators may change its tags. A writer of the secret's value who names another login in
/// AWSCURRENT (threat 31) gets nothing sent to any host.
@Suite struct LoginTagPinTests {
    static let tag = "RotatorLogin"
    static let currentId = "00000000-0000-0000-0000-00000000000a"

    /// The World's secret in a fleet: the function has LOGIN_TAG, the secret carries `tags`, and
    /// AWSCURRENT names `username`.
    func fleetWorld(tags: [String: String], username: String = "app") throws -> World {
        let w = World()
        w.loginTag = Self.tag
        w.secrets.tags = tags
        let stored = try JSON.parse(try #require(w.secrets.versions[Self.currentId]?.secretString))
        w.secrets.versions[Self.currentId]!.secretString = stored.setting("username", to: .string(username)).serialized
        w.secrets.startRotation(token: token)
        return w
    }

    /// The steps that read AWSCURRENT before acting (finishSecret follows a testSecret that passed).
    static let checkingSteps: [RotationStep] = [.createSecret, .setSecret, .testSecret]

    func expectRefusedBeforeAnyHost(_ w: World, naming expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for step in Self.checkingSteps {
            do {
                try w.run(step)
                Issue.record("\(step) went ahead", sourceLocation: sourceLocation)
            } catch {
                #expect(error.errorType == "InvalidSecret", "\(error)", sourceLocation: sourceLocation)
                for text in expected {
                    #expect(error.description.contains(text), "\(error.description)", sourceLocation: sourceLocation)
                }
            }
        }
        #expect(w.ssm.sent.isEmpty, "a host command was sent", sourceLocation: sourceLocation)
        #expect(w.ssm.hosts[instanceA]?.password == oldPassword, sourceLocation: sourceLocation)
        #expect(!w.secrets.calls.contains("PutSecretValue"), sourceLocation: sourceLocation)
        #expect(w.secrets.stages(of: Self.currentId) == ["AWSCURRENT"], sourceLocation: sourceLocation)
    }

    @Test func aLoginThePinNamesRotates() throws {
        let w = try fleetWorld(tags: [Self.tag: "app", "RotatorFleet": "rotator"])
        for step in RotationStep.allCases { try w.run(step) }
        let newPassword = try #require(w.pendingPassword())
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        #expect(w.ssm.hosts[instanceA]?.password == newPassword)
    }

    @Test func aCurrentVersionNamingAnotherLoginSendsNothing() throws {
        // Another application's login: unprivileged, so only the pin stops the host changing it.
        let w = try fleetWorld(tags: [Self.tag: "app"], username: "billing")
        expectRefusedBeforeAnyHost(w, naming: ["AWSCURRENT", #""billing""#, #""app""#, Self.tag])
    }

    /// The tag is read again when finishSecret settles the hosts on the version it made
    /// AWSCURRENT: a tag an administrator changed after testSecret stops the settle, and the
    /// error names the version as what it now is, AWSCURRENT.
    @Test func aPinChangedBeforeFinishSecretStopsTheSettle() throws {
        let w = try fleetWorld(tags: [Self.tag: "app"])
        for step in [RotationStep.createSecret, .setSecret, .testSecret] { try w.run(step) }
        let sent = w.ssm.sent.count
        w.secrets.tags[Self.tag] = "billing"
        do {
            try w.run(.finishSecret)
            Issue.record("finishSecret settled a version the tag no longer pins")
        } catch {
            #expect(error.description.contains(#"AWSCURRENT's "username" ("app")"#), "\(error.description)")
        }
        #expect(w.ssm.sent.count == sent, "a host command was sent")
    }

    @Test func theCloneOfAnotherLoginIsAnotherLogin() throws {
        let w = try fleetWorld(tags: [Self.tag: "app"], username: "billing_clone")
        expectRefusedBeforeAnyHost(w, naming: [#""billing_clone""#])
    }

    @Test func aSecretWithoutThePinIsRefused() throws {
        let w = try fleetWorld(tags: ["RotatorFleet": "rotator"])
        expectRefusedBeforeAnyHost(w, naming: ["no \(Self.tag) tag"])
    }

    /// An empty tag pins no login: not even "_clone", which an empty pin plus the clone's suffix
    /// would otherwise allow.
    @Test func anEmptyPinIsNoPin() throws {
        let w = try fleetWorld(tags: [Self.tag: ""], username: DatabaseSecret.cloneSuffix)
        expectRefusedBeforeAnyHost(w, naming: ["no \(Self.tag) tag"])
    }

    @Test func withoutALoginTagOrAPinningTagTheDocumentsPinIt() throws {
        // The single stack: no LOGIN_TAG and no RotatorLogin tag (its documents pin the login on the host).
        let w = try fleetWorld(tags: ["RotatorLoginNote": "someone-else", "RotatorFleet": "rotator"])
        w.loginTag = nil
        for step in RotationStep.allCases { try w.run(step) }
        #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
    }

    /// Threat 38: someone who may change the function's configuration but not the secret's tags
    /// empties LOGIN_TAG (or names another tag); the secret's RotatorLogin tag still pins its login.
    @Test(arguments: [nil, "SomeOtherTag"]) func theRotatorLoginTagPinsWhateverTheConfigurationSays(loginTag: String?) throws {
        let w = try fleetWorld(tags: [Self.tag: "app", "SomeOtherTag": "billing"], username: "billing")
        w.loginTag = loginTag
        expectRefusedBeforeAnyHost(w, naming: [#""billing""#, #""app""#, Self.tag])
    }

    /// IAM reads tag names without case, so the shared role's condition on RotatorLogin admits a
    /// secret tagged `rotatorlogin` alone; the pin, read exactly, would see none and, with LOGIN_TAG
    /// emptied, let any login through. A tag that differs from a pinning tag only in case is refused,
    /// beside the exact tag too (which of the two IAM reads is not said).
    @Test(arguments: [
        (["rotatorlogin": "billing"], nil as String?),
        (["ROTATORLOGIN": "billing"], "RotatorLogin"),
        ([tag: "app", "rotatorLogin": "billing"], nil),
        ([tag: "app", "SomeOtherTag": "app", "someothertag": "billing"], "SomeOtherTag"),
    ]) func aTagThatDiffersFromAPinOnlyInCaseIsRefused(tags: [String: String], loginTag: String?) throws {
        let w = try fleetWorld(tags: tags, username: "billing")
        w.loginTag = loginTag
        expectRefusedBeforeAnyHost(w, naming: ["only in case"])
    }

    static let masterArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/admin-XyZ123"

    /// A pin that ends in `_clone` allows that login and its own `_clone`, not the login without the
    /// suffix: but alternating users' next login of `app_clone` is `app` (`nextUsername`), so checking
    /// AWSCURRENT alone let a writer of the value (A) have `app`, another application's login, changed.
    /// Every version that reaches a host is checked against the pin, AWSPENDING too.
    @Test func aPendingVersionNamingALoginThePinDoesNotNameSendsNothing() throws {
        let w = try fleetWorld(tags: [Self.tag: "app_clone"], username: "app_clone")
        let current = try JSON.parse(try #require(w.secrets.versions[Self.currentId]?.secretString))
            .setting("masterarn", to: .string(Self.masterArn))
        w.secrets.versions[Self.currentId]!.secretString = current.serialized
        w.secrets.versions[token]!.secretString = current.setting("username", to: .string("app"))
            .setting("password", to: .string("written-by-a-writer")).serialized
        expectRefusedBeforeAnyHost(w, naming: ["AWSPENDING", #""app""#, #""app_clone""#, Self.tag])
    }

    /// The same pin, and no pending value yet: createSecret writes no version naming `app`.
    @Test func createSecretWritesNoVersionNamingALoginThePinDoesNotName() throws {
        let w = try fleetWorld(tags: [Self.tag: "app_clone"], username: "app_clone")
        let current = try JSON.parse(try #require(w.secrets.versions[Self.currentId]?.secretString))
        w.secrets.versions[Self.currentId]!.secretString = current.setting("masterarn", to: .string(Self.masterArn)).serialized
        let error = try #require(w.failure(of: .createSecret))
        #expect(error.errorType == "InvalidSecret", "\(error)")
        #expect(error.description.contains(#""app""#) && error.description.contains(Self.tag), "\(error.description)")
        // The refusal names the version it is about: the one createSecret would have written.
        #expect(error.description.contains(#"AWSPENDING's "username""#), "\(error.description)")
        #expect(!w.secrets.calls.contains("PutSecretValue"))
        #expect(w.secrets.versions[token]?.secretString == nil)
    }

    /// An empty pin pins no login: nothing is rotated, rather than anything.
    @Test func anEmptyRotatorLoginTagPinsNothing() throws {
        let w = try fleetWorld(tags: [Self.tag: ""])
        w.loginTag = nil
        expectRefusedBeforeAnyHost(w, naming: [#""app""#, Self.tag])
    }

    static let fleetKey = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    /// Threat 35: a secret made by hand under the fleet's prefix and tags, on the account's
    /// aws/secretsmanager key (which every principal of the account may use, so the fleet key's
    /// policy guards nothing), or on another key, is refused before any host command.
    @Test func aSecretNotOnTheFleetsKeyIsRefused() throws {
        for used in [nil, "arn:aws:kms:us-east-1:123456789012:key/another", "arn:aws:kms:us-east-1:123456789012:alias/fleet"] {
            let w = try fleetWorld(tags: [Self.tag: "app"])
            w.secretKeyArn = Self.fleetKey
            w.secrets.kmsKeyId = used
            expectRefusedBeforeAnyHost(w, naming: ["not the fleet's key", used ?? "aws/secretsmanager"])
        }
    }

    /// The key ID is what follows the ARN's last "/", even when nothing does: a SECRET_KEY_ARN
    /// with a "/" after the key's ID (a configuration mistake) names no key, and a secret on the
    /// key that ID names is refused rather than matched against a piece of the setting.
    @Test func aKeyArnEndingInASlashNamesNoKeyId() throws {
        let w = try fleetWorld(tags: [Self.tag: "app"])
        w.secretKeyArn = Self.fleetKey + "/"
        w.secrets.kmsKeyId = "1234abcd-12ab-34cd-56ef-1234567890ab"
        expectRefusedBeforeAnyHost(w, naming: ["not the fleet's key", "1234abcd-12ab-34cd-56ef-1234567890ab"])
    }

    @Test func aSecretOnTheFleetsKeyByArnOrKeyIdRotates() throws {
        for used in [Self.fleetKey, "1234abcd-12ab-34cd-56ef-1234567890ab"] {
            let w = try fleetWorld(tags: [Self.tag: "app"])
            w.secretKeyArn = Self.fleetKey
            w.secrets.kmsKeyId = used
            for step in RotationStep.allCases { try w.run(step) }
            #expect(w.secrets.stages(of: token) == ["AWSCURRENT"])
        }
    }
}
