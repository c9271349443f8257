import RotatorJSON
import Testing
@testable import Rotation

@Suite struct RotationEventTests {
    func parse(_ text: String) throws(RotationError) -> RotationEvent { try RotationEvent.parse(Array(text.utf8)) }

    @Test func acceptsSecretsManagersEvent() throws {
        let event = try parse(#"{"Step":"setSecret","SecretId":"arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf","ClientRequestToken":"11111111-2222-3333-4444-555555555555","RotationToken":"tok"}"#)
        #expect(event.step == .setSecret)
        #expect(event.token == "11111111-2222-3333-4444-555555555555")
        #expect(event.rotationToken == "tok")
    }

    @Test func rotationTokenIsOptional() throws {
        let event = try parse(#"{"Step":"createSecret","SecretId":"db","ClientRequestToken":"11111111222233334444555555555555"}"#)
        #expect(event.rotationToken == nil)
    }

    @Test(arguments: [
        ("not json", "not JSON"),
        ("[1,2]", "not a JSON object"),
        (#"{"SecretId":"s","ClientRequestToken":"11111111222233334444555555555555"}"#, "no Step"),
        (#"{"Step":3,"SecretId":"s","ClientRequestToken":"11111111222233334444555555555555"}"#, "Step is not a string"),
        (#"{"Step":"rotateEverything","SecretId":"s","ClientRequestToken":"11111111222233334444555555555555"}"#, "unknown Step"),
        (#"{"Step":"setSecret","SecretId":"","ClientRequestToken":"11111111222233334444555555555555"}"#, "SecretId"),
        (#"{"Step":"setSecret","SecretId":"s","ClientRequestToken":"short"}"#, "ClientRequestToken"),
        (#"{"Step":"setSecret","SecretId":"s","ClientRequestToken":"11111111-2222-3333-4444-55555555555$"}"#, "ClientRequestToken"),
        (#"{"Step":"setSecret","SecretId":"s","ClientRequestToken":"11111111222233334444555555555555","RotationToken":7}"#, "RotationToken"),
    ])
    func rejectsMalformedEvents(text: String, expected: String) {
        do {
            _ = try parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.errorType == "InvalidEvent")
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test func anEventNamingAFieldTwiceIsRefused() {
        do {
            _ = try parse(#"{"Step":"createSecret","SecretId":"a","ClientRequestToken":"11111111222233334444555555555555","SecretId":"b"}"#)
            Issue.record("accepted")
        } catch {
            #expect(error.errorType == "InvalidEvent")
            #expect(error.description.contains("duplicate member name \"SecretId\""), "\(error.description)")
        }
    }

    @Test func anUnknownStepIsQuotedSafely() {
        do {
            _ = try parse(#"{"Step":"x\n\u0000y","SecretId":"s","ClientRequestToken":"11111111222233334444555555555555"}"#)
        } catch {
            #expect(!error.description.contains("\n"))
        }
    }
}

@Suite struct DatabaseSecretTests {
    static let valid = #"{"engine":"mariadb","host":"db","port":"3306","username":"app","password":"p","dbname":"shop","instanceIds":["i-0123456789abcdef0","mi-0123456789abcdef0"],"extra":{"keep":[1,2]}}"#

    @Test func parsesTheUsualFields() throws {
        let secret = try DatabaseSecret.parse(DatabaseSecretTests.valid)
        #expect(secret.engine == .mysql)
        #expect(secret.username == "app")
        #expect(secret.instanceIds == ["i-0123456789abcdef0", "mi-0123456789abcdef0"])
    }

    @Test func newVersionChangesOnlyThePassword() throws {
        let secret = try DatabaseSecret.parse(DatabaseSecretTests.valid)
        #expect(secret.replacingPassword(with: "N3w") == DatabaseSecretTests.valid.replacing(#""password":"p""#, with: #""password":"N3w""#))
    }

    @Test(arguments: [
        (#"{"host":"h","username":"u","password":"p","instanceIds":["i-0123456789abcdef0"]}"#, "\"engine\""),
        (#"{"engine":"oracle","host":"h","username":"u","password":"p","instanceIds":["i-0123456789abcdef0"]}"#, "unknown engine"),
        (#"{"engine":"postgres","username":"u","password":"p","instanceIds":["i-0123456789abcdef0"]}"#, "\"host\""),
        (#"{"engine":"postgres","host":"h","password":"p","instanceIds":["i-0123456789abcdef0"]}"#, "\"username\""),
        (#"{"engine":"postgres","host":"h","username":"u","instanceIds":["i-0123456789abcdef0"]}"#, "\"password\""),
        (#"{"engine":"postgres","host":"h","username":"u","password":"p"}"#, "instanceIds"),
        (#"{"engine":"postgres","host":"h","username":"u","password":"p","instanceIds":[]}"#, "1 to 50"),
        (#"{"engine":"postgres","host":"h","username":"u","password":"p","instanceIds":["i-123; rm -rf /"]}"#, "not an instance id"),
        (#"{"engine":"postgres","host":"h","username":"u","password":"p","instanceIds":[42]}"#, "not an instance id"),
        (#"{"engine":"postgres","host":"h","username":"u","password":"p","port":70000,"instanceIds":["i-0123456789abcdef0"]}"#, "port"),
        (#"{"engine":"postgres","host":"h","username":"u\u0000","password":"p","instanceIds":["i-0123456789abcdef0"]}"#, "control"),
        (#"{"engine":"postgres","host":"h","username":"u","password":"p","dbname":5,"instanceIds":["i-0123456789abcdef0"]}"#, "dbname"),
        (#"["engine"]"#, "not a JSON object"),
        (#"{"engine":"postgres","password":"hunter2-leak""#, "not valid JSON"),
    ])
    func rejectsIncompleteOrHostileSecrets(text: String, expected: String) {
        do {
            _ = try DatabaseSecret.parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.errorType == "InvalidSecret")
            #expect(error.description.contains(expected), "\(error.description)")
            #expect(!error.description.contains("hunter2"))
        }
    }

    /// Only C0 controls and DEL are refused in the texts a host script handles: the characters
    /// next to them (space, `~`, U+0080) are ordinary.
    @Test func theNeighboursOfControlCharactersAreAccepted() throws {
        for text in ["a b", "a~b", "a\u{80}b"] {
            let secret = try DatabaseSecret.parse(#"{"engine":"postgres","host":"h","username":""# + text + #"","password":""# + text
                                                  + #"","dbname":""# + text + #"","instanceIds":["i-0123456789abcdef0"]}"#)
            #expect(secret.username == text)
        }
    }

    /// The length limits are the engines' limits on names: a password has none here, so the
    /// longest PASSWORD_LENGTH (128) fits every engine.
    @Test(arguments: ["postgres", "mysql", "sqlserver"])
    func aPasswordIsNotMeasuredAsAName(engine: String) throws {
        let password = String(repeating: "p", count: 128)
        let secret = try DatabaseSecret.parse(#"{"engine":""# + engine + #"","host":"h","username":"u","password":""# + password
                                              + #"","instanceIds":["i-0123456789abcdef0"]}"#)
        #expect(secret.json["password"]?.stringValue == password)
    }

    /// A port given as text is one to five ASCII digits (what the host helper reads), whatever
    /// Swift's Int() would also take; then 1 to 65535 like a number.
    @Test func aPortAsTextIsOneToFiveDigits() throws {
        func parse(port: String) throws(RotationError) -> DatabaseSecret {
            try DatabaseSecret.parse(#"{"engine":"postgres","host":"h","username":"u","password":"p","port":""# + port
                                     + #"","instanceIds":["i-0123456789abcdef0"]}"#)
        }
        for valid in ["1", "9", "09999", "65535"] { #expect(throws: Never.self, "\(valid)") { _ = try parse(port: valid) } }
        for invalid in ["0", "000080", "65536", "+5432", "-1", "5/", "5:"] {
            #expect(throws: RotationError.self, "\(invalid)") { _ = try parse(port: invalid) }
        }
    }

    /// A masterarn refused as the secret itself is exactly this secret: its full ARN, or its partial
    /// ARN (the name without Secrets Manager's `-` and six random characters). A secret whose name
    /// merely starts the same, or has the same length, is another secret.
    @Test func onlyTheSecretItselfIsRefusedAsItsOwnAdministrator() throws {
        let arnPrefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
        func parse(secret: String, master: String) throws(RotationError) -> DatabaseSecret {
            try DatabaseSecret.parse(#"{"engine":"postgres","host":"h","username":"u","password":"p","instanceIds":["i-0123456789abcdef0"],"masterarn":""#
                                     + arnPrefix + master + #""}"#, secretArn: arnPrefix + secret)
        }
        for (secret, master) in [("db/app-AbCdEf", "db/app-AbCdEf"), ("db/app-AbCdEf", "db/app")] {
            #expect(throws: RotationError.self, "\(master)") { _ = try parse(secret: secret, master: master) }
        }
        for (secret, master) in [("db/app-admin-AbCdEf", "db/app"), ("db/app-AbCdEf", "db/xyz"), ("db/app-AbCdEf", "db/app-AbCdEg")] {
            #expect(try parse(secret: secret, master: master).masterArn == arnPrefix + master)
        }
    }

    @Test func fiftyInstancesAreAccepted() throws {
        let ids = (0..<50).map { "\"i-\(String(0x10000000 + $0, radix: 16))\"" }.joined(separator: ",")
        let secret = try DatabaseSecret.parse(#"{"engine":"postgres","host":"h","username":"u","password":"p","instanceIds":["# + ids + "]}")
        #expect(secret.instanceIds.count == 50)
    }

    /// With alternating users, "_clone" alone names no first login: refused, not rotated to "".
    @Test func aUsernameThatIsOnlyTheCloneSuffixIsRefused() throws {
        let secret = try DatabaseSecret.parse(#"{"engine":"postgres","host":"h","username":"_clone","password":"p","instanceIds":["i-0123456789abcdef0"],"#
                                              + #""masterarn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db/admin-AbCdEf"}"#)
        #expect(throws: RotationError.self) { _ = try secret.nextUsername() }
    }

    @Test func fiftyOneInstancesAreTooMany() {
        let ids = (0..<51).map { "\"i-\(String(0x10000000 + $0, radix: 16))\"" }.joined(separator: ",")
        #expect(throws: RotationError.self) {
            try DatabaseSecret.parse(#"{"engine":"postgres","host":"h","username":"u","password":"p","instanceIds":["# + ids + "]}")
        }
    }

    // The attack: this function would read (and log) the first "username", Python's json.loads on
    // the host keeps the last, so the host would set KNOWN on postgres.
    static let twoLogins = #"{"username":"app","password":"x","engine":"postgres","host":"h","instanceIds":["i-0123456789abcdef0"],"username":"postgres","password":"KNOWN"}"#

    @Test(arguments: [
        twoLogins,
        // The same name spelled with an escape.
        #"{"username":"app","password":"x","engine":"postgres","host":"h","instanceIds":["i-0123456789abcdef0"],"user\u006eame":"postgres"}"#,
        // Only the password twice: the host would take the last, the function's copy the first.
        #"{"engine":"postgres","host":"h","username":"app","password":"x","instanceIds":["i-0123456789abcdef0"],"password":"KNOWN"}"#,
        // instanceIds twice: the hosts the function checks would not be the ones named last.
        #"{"engine":"postgres","host":"h","username":"app","password":"x","instanceIds":["i-0123456789abcdef0"],"instanceIds":["i-0fedcba9876543210"]}"#,
        // Nested, in a field the function copies untouched.
        #"{"engine":"postgres","host":"h","username":"app","password":"x","instanceIds":["i-0123456789abcdef0"],"extra":{"k":"KNOWN","k":"KNOWN"}}"#,
    ])
    func aSecretNamingAFieldTwiceIsRefused(_ text: String) {
        do {
            let secret = try DatabaseSecret.parse(text)
            Issue.record("accepted a secret with a duplicate field, as \(secret.username)")
        } catch {
            guard case .invalidSecret(let message) = error else { Issue.record("wrong error \(error)"); return }
            #expect(message.contains("duplicate member name"), "\(message)")
            #expect(message.contains("at byte"), "\(message)")
            #expect(!message.contains("KNOWN") && !message.contains("postgres\"") && !message.contains("\"x\""), "\(message)")
        }
    }

    @Test func theAttackIsRefusedNamingTheFieldAndItsOffset() throws {
        // The second "username" starts after `{"username":"app","password":"x","engine":"postgres",
        // "host":"h","instanceIds":["i-0123456789abcdef0"],`: 100 bytes.
        let prefix = #"{"username":"app","password":"x","engine":"postgres","host":"h","instanceIds":["i-0123456789abcdef0"],"#
        do {
            _ = try DatabaseSecret.parse(Self.twoLogins)
            Issue.record("accepted")
        } catch {
            #expect(error == .invalidSecret("the secret is not valid JSON (invalid JSON at byte \(prefix.utf8.count): duplicate member name \"username\")"))
        }
    }
}

@Suite struct IdentifierTests {
    @Test func versionIds() {
        #expect(Identifiers.isVersionId(String(repeating: "a", count: 32)))
        #expect(Identifiers.isVersionId(String(repeating: "A-9", count: 21) + "z"))
        #expect(!Identifiers.isVersionId(String(repeating: "a", count: 31)))
        #expect(!Identifiers.isVersionId(String(repeating: "a", count: 65)))
        #expect(!Identifiers.isVersionId(String(repeating: "a", count: 31) + "_"))
        #expect(!Identifiers.isVersionId(String(repeating: "a", count: 31) + "é"))
    }

    @Test func instanceIds() {
        #expect(Identifiers.isInstanceId("i-0123456789abcdef0"))
        #expect(Identifiers.isInstanceId("i-01234567"))
        #expect(Identifiers.isInstanceId("mi-0123456789abcdef0"))
        #expect(!Identifiers.isInstanceId("i-0123456"))
        #expect(!Identifiers.isInstanceId("i-0123456789ABCDEF0"))
        #expect(!Identifiers.isInstanceId("x-0123456789abcdef0"))
        #expect(!Identifiers.isInstanceId("i-0123456789abcdef0-1"))
        #expect(!Identifiers.isInstanceId("i-0123456789abcdef01"))
        // Hexadecimal only: the first letter past f, in every position's reach.
        #expect(!Identifiers.isInstanceId("i-0123456789abcdefg"))
        #expect(!Identifiers.isInstanceId("mi-0123456g"))
    }

    /// What error messages and logs show of an untrusted text: quoted, every control character
    /// (C0 and DEL) escaped so it cannot start a forged log line, anything else kept, and cut at
    /// the limit with an ellipsis only when something was cut.
    @Test func quotedTextsCannotForgeALine() {
        #expect(Identifiers.quoted("a\nb\u{7F}c\u{1F} d~é") == #""a\nb\u{7F}c\u{1F} d~é""#)
        #expect(Identifiers.quoted("\t\r\u{0}") == #""\t\r\0""#)
        let sixtyFour = String(repeating: "a", count: 64)
        #expect(Identifiers.quoted(sixtyFour) == "\"" + sixtyFour + "\"")
        #expect(Identifiers.quoted(sixtyFour + "b") == "\"" + sixtyFour + "…\"")
        #expect(Identifiers.quoted("abc", limit: 2) == "\"ab…\"")
    }

    /// The attack quoted() is for: whoever may write the secret names its engine so that the alert
    /// mail (one line per fact) gains a line of the writer's choosing, here one saying a host was
    /// changed, a carriage return and a terminal escape that erase what the line showed. The alert
    /// must keep its own lines and show every control character of the name escaped, none raw.
    @Test func aHostileEngineNameCannotForgeALineOfTheAlert() throws {
        let w = World()
        let hostile = "postgres\n- \(instanceB): outcome=changed\u{7F}\r\u{1B}[2K"
        let current = try JSON.parse(World.current()).setting("engine", to: .string(hostile))
        w.secrets.versions[currentVersion]?.secretString = current.serialized
        w.secrets.startRotation(token: token)

        #expect(throws: RotationError.self) { try w.run(.createSecret) }

        let alert = try #require(w.sns.published.first)
        let lines = alert.message.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3, "the header, a blank line and the reason, no more: \(alert.message)")
        #expect(!alert.message.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || $0.value == 0x7F })
        #expect(alert.message.contains(#"unknown engine "postgres\n- \#(instanceB): outcome=changed\u{7F}\r\u{1B}[2K""#))
    }

    /// The same attack through a host: a failed script's error output echoes a table name the
    /// application's login chose (it owns its schema), with a line break, terminal escapes in both
    /// forms, DEL and NEL. The alert quotes the output but every control character in it is escaped.
    @Test func aHostsErrorOutputCannotForgeALineOfTheAlertOrDriveATerminal() throws {
        let w = World()
        w.ssm.hosts[instanceA]?.fault = .echoesHostileNames
        try w.createPendingVersion()
        #expect(throws: RotationError.self) { try w.run(.setSecret) }

        let alert = try #require(w.sns.published.first)
        #expect(!alert.message.unicodeScalars.contains {
            ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) || $0 == "\u{2028}" || $0 == "\u{2029}"
        }, "\(alert.message.unicodeScalars.map { $0.escaped(asASCII: true) }.joined())")
        #expect(!alert.message.contains("\n- \(instanceB): outcome=changed"))
        // NEL and U+2028 end lines as \n does: each piece of the output is kept, joined on one line.
        #expect(alert.message.contains(#"table "t\u{1B}[2K\u{009B}31m\u{7F} | x" | - "#))
    }

    /// The bounds of what shownOnOneLine escapes, one scalar each side of each: C0 and DEL, the
    /// whole C1 block (U+0080 to U+009F: NEL and CSI among them) and both Unicode separators, while
    /// the scalars next to them (`~`, the no-break space U+00A0, U+2027) are text and kept as they are.
    @Test func exactlyTheControlsAndTheSeparatorsAreEscaped() {
        #expect(Identifiers.shownOnOneLine("\u{1F}\u{7F}\u{80}\u{9F}\u{2028}\u{2029}") == #"\u{1F}\u{7F}\u{0080}\u{009F}\u{2028}\u{2029}"#)
        #expect(Identifiers.shownOnOneLine("~\u{A0}\u{2027}") == "~\u{A0}\u{2027}")
    }

    /// quoted() escapes the quote and the backslash: a name cannot seem to close its quotes and go
    /// on as the message's own text.
    @Test func aQuotedNameCannotCloseItsQuotes() {
        #expect(Identifiers.quoted(#"x"; expected "app"#) == #""x\"; expected \"app""#)
        #expect(Identifiers.quoted(#"a\b"#) == #""a\\b""#)
    }

    @Test func secretArns() {
        #expect(Identifiers.isSecretArn("arn:aws:secretsmanager:us-east-1:123456789012:secret:db/app-AbCdEf"))
        #expect(Identifiers.isSecretArn("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a+b=c.d@e_f-G"))
        #expect(!Identifiers.isSecretArn("arn:aws:secretsmanager:us-east-1:12345678901:secret:x"))
        #expect(!Identifiers.isSecretArn("arn:aws:ssm:us-east-1:123456789012:secret:x"))
        #expect(!Identifiers.isSecretArn("arn:aws:secretsmanager:us-east-1:123456789012:secret:x;reboot"))
        #expect(!Identifiers.isSecretArn("arn:aws:secretsmanager:us-east-1:123456789012:secret:x y"))
        #expect(!Identifiers.isSecretArn("arn:aws:secretsmanager:us-east-1:123456789012:secret:"))
        #expect(!Identifiers.isSecretArn("arn:aws:secretsmanager:US-EAST-1:123456789012:secret:x"))
        #expect(!Identifiers.isSecretArn("db/app"))
    }

    /// Every bound of the documents' patterns, from both sides: the characters just outside each
    /// range (`/` and `:` around digits, `` ` `` and `{` around lowercase, `@` and `[` around
    /// uppercase) and each length limit and one past it. What SSM would refuse is refused here first.
    @Test func identifierPatternsHoldAtEveryBound() {
        let outside: [Character] = ["/", ":", "`", "{", "@", "["]
        let id32 = String(repeating: "a", count: 31)
        for c in outside { #expect(!Identifiers.isVersionId(id32 + String(c)), "\(c)") }
        for c in ["0", "9", "a", "z", "A", "Z", "-"] { #expect(Identifiers.isVersionId(id32 + c), "\(c)") }
        #expect(Identifiers.isVersionId(String(repeating: "a", count: 64)))

        for c in ["/", ":", "`", "g", "A", "F"] { #expect(!Identifiers.isInstanceId("i-0123456" + c), "\(c)") }
        for c in ["0", "9", "a", "f"] { #expect(Identifiers.isInstanceId("i-0123456" + c), "\(c)") }
        #expect(Identifiers.isInstanceId("i-0123456789abcdef0"))
        #expect(!Identifiers.isInstanceId("i-0123456789abcdef01"))
        #expect(!Identifiers.isInstanceId("i"))
        #expect(!Identifiers.isInstanceId("ii-0123456789abcdef0"))
        // Empty fields count: a doubled or trailing separator is not ignored.
        #expect(!Identifiers.isInstanceId("i--0123456789abcdef0"))
        #expect(!Identifiers.isInstanceId("i-0123456789abcdef0-"))

        func arn(partition: String = "aws", service: String = "secretsmanager", region: String = "us-east-1",
                 account: String = "123456789012", kind: String = "secret", name: String = "db/app-AbCdEf") -> String {
            "arn:\(partition):\(service):\(region):\(account):\(kind):\(name)"
        }
        #expect(Identifiers.isSecretArn(arn()))
        #expect(Identifiers.isSecretArn(arn(partition: "aws" + String(repeating: "a", count: 16))))
        #expect(!Identifiers.isSecretArn(arn(partition: "aws" + String(repeating: "a", count: 17))))
        for c in ["`", "{", "0", "A", "_"] { #expect(!Identifiers.isSecretArn(arn(partition: "aws-" + c)), "\(c)") }
        #expect(Identifiers.isSecretArn(arn(partition: "aws-z")))
        #expect(!Identifiers.isSecretArn(arn(partition: "awz")))
        #expect(!Identifiers.isSecretArn(arn(service: "secretsmanagers")))
        #expect(Identifiers.isSecretArn(arn(region: "a")))
        #expect(Identifiers.isSecretArn(arn(region: String(repeating: "z", count: 31) + "9")))
        #expect(!Identifiers.isSecretArn(arn(region: String(repeating: "a", count: 33))))
        #expect(!Identifiers.isSecretArn(arn(region: "")))
        for c in ["`", "{", "/", "A", "_"] { #expect(!Identifiers.isSecretArn(arn(region: "us-east-" + c)), "\(c)") }
        #expect(Identifiers.isSecretArn(arn(region: "us-east-0")))
        #expect(!Identifiers.isSecretArn(arn(account: "1234567890123")))
        for c in ["/", ":", "a"] { #expect(!Identifiers.isSecretArn(arn(account: "12345678901" + c)), "\(c)") }
        #expect(Identifiers.isSecretArn(arn(account: "999999999990")))
        #expect(!Identifiers.isSecretArn(arn(kind: "secrets")))
        #expect(!Identifiers.isSecretArn(arn(kind: "secret:")))
        #expect(!Identifiers.isSecretArn(arn(name: "db/app:")))
        #expect(!Identifiers.isSecretArn("arm" + arn().dropFirst(3)))
        #expect(Identifiers.isSecretArn(arn(name: String(repeating: "n", count: 512))))
        #expect(!Identifiers.isSecretArn(arn(name: String(repeating: "n", count: 513))))
        #expect(Identifiers.isSecretArn(arn(name: "a/_+=.@-Z09z")))
        for c in outside.filter({ $0 != "/" && $0 != "@" }) + [";", "~"] {
            #expect(!Identifiers.isSecretArn(arn(name: "db" + String(c))), "\(c)")
        }
    }
}

@Suite struct PasswordPolicyTests {
    @Test func defaultAlphabetExcludesEveryCharacterThatMeansSomething() throws {
        let policy = try PasswordPolicy()
        for dangerous in "\"'`$;|&()<>\\/@%!#*?[]{}^ " {
            #expect(!policy.alphabet.contains(dangerous), "\(dangerous)")
        }
        let request = policy.randomPasswordRequest
        #expect(request.length == 32)
        #expect(request.requireEachIncludedType)
        for dangerous in "\"'`$;|&()<>\\" { #expect(request.excludeCharacters.contains(dangerous)) }
        for allowed in "aZ9-_.~+=:," { #expect(!request.excludeCharacters.contains(allowed)) }
    }

    @Test func excludeCharactersNarrowsTheAlphabet() throws {
        let policy = try PasswordPolicy(length: 20, excludeCharacters: "-_.~+=:,lIO0")
        #expect(policy.randomPasswordRequest.excludeCharacters.contains("l"))
        #expect(!policy.randomPasswordRequest.requireEachIncludedType)
        #expect(policy.admits("abcdefghijkmnpqrstuv"))
        #expect(!policy.admits("abcdefghijkmnpqrstu0"))
        #expect(!policy.admits("abc"))
    }

    @Test func unusableSettingsAreConfigurationErrors() {
        #expect(throws: RotationError.self) { try PasswordPolicy(length: 8) }
        #expect(throws: RotationError.self) { try PasswordPolicy(length: 129) }
        #expect(throws: RotationError.self) { try PasswordPolicy(excludeCharacters: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345678") }
    }

    /// PASSWORD_LENGTH 16 to 128 inclusive; EXCLUDE_CHARACTERS may leave as few as 10 characters.
    @Test func settingsAtTheirLimitsAreAccepted() throws {
        #expect(throws: RotationError.self) { try PasswordPolicy(length: 15) }
        #expect(try PasswordPolicy(length: 16).randomPasswordRequest.length == 16)
        #expect(try PasswordPolicy(length: 128).randomPasswordRequest.length == 128)
        let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        let ten = try PasswordPolicy(excludeCharacters: letters + "-_.~+=:,")
        #expect(ten.alphabet == Set("0123456789"))
        #expect(throws: RotationError.self) { try PasswordPolicy(excludeCharacters: letters + "-_.~+=:,0") }
    }

    /// GetRandomPassword is asked to exclude exactly the printable ASCII characters outside the
    /// alphabet (space is its own option, off by default; DEL is not printable), and to require each
    /// character class only while the alphabet has all four.
    @Test func theRequestExcludesExactlyWhatTheAlphabetLacks() throws {
        #expect(try PasswordPolicy().randomPasswordRequest.excludeCharacters == ##"!"#$%&'()*/;<>?@[\]^`{|}"##)
        #expect(try PasswordPolicy(excludeCharacters: "~").randomPasswordRequest.excludeCharacters == ##"!"#$%&'()*/;<>?@[\]^`{|}~"##)
        #expect(try PasswordPolicy(excludeCharacters: "-_.~+=:,").randomPasswordRequest.requireEachIncludedType == false)
        #expect(try PasswordPolicy(excludeCharacters: "0123456789").randomPasswordRequest.requireEachIncludedType == false)
        #expect(try PasswordPolicy(excludeCharacters: "-_.~+=:").randomPasswordRequest.requireEachIncludedType == true)
    }
}

@Suite struct ResultLineTests {
    let version = "11111111-2222-3333-4444-555555555555"
    func command(_ action: HostAction) throws -> HostCommand {
        try HostCommand(action: action, secretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", versionId: version)
    }

    @Test func acceptsOnlyTheContractLineForThisActionAndVersion() throws {
        let set = try command(.set)
        #expect(set.reportedOutcome(in: "x\nROTATOR-RESULT action=set version=\(version) outcome=changed\n") == "changed")
        #expect(set.reportedOutcome(in: "ROTATOR-RESULT action=set version=\(version) outcome=unchanged\r\n") == "unchanged")
        #expect(set.reportedOutcome(in: "ROTATOR-RESULT action=set version=\(version) outcome=verified") == nil)
        #expect(set.reportedOutcome(in: "ROTATOR-RESULT action=verify version=\(version) outcome=changed") == nil)
        #expect(set.reportedOutcome(in: "ROTATOR-RESULT action=set version=other outcome=changed") == nil)
        #expect(set.reportedOutcome(in: "ROTATOR-RESULT action=set version=\(version) outcome=changed\nmore") == nil)
        #expect(set.reportedOutcome(in: "PASSWORDUPDATESUCCESSFUL") == nil)
        #expect(set.reportedOutcome(in: "") == nil)
        #expect(try command(.verify).reportedOutcome(in: "ROTATOR-RESULT action=verify version=\(version) outcome=verified") == "verified")
    }

    /// Whatever line ending the host's shell or PowerShell uses, the result line is the last one
    /// that is not blank; anything else on it (a field without `=`, text before the prefix) refuses it.
    @Test func findsTheLastLineWhateverTheLineEndings() throws {
        let set = try command(.set)
        let line = "ROTATOR-RESULT action=set version=\(version) outcome=changed"
        for ending in ["\n", "\r\n", "\r"] {
            #expect(set.reportedOutcome(in: "first" + ending + line + ending) == "changed", "\(ending.debugDescription)")
            #expect(set.reportedOutcome(in: line + ending + "later" + ending) == nil, "\(ending.debugDescription)")
        }
        #expect(set.reportedOutcome(in: line + "\n  \n\t\n") == "changed")
        #expect(set.reportedOutcome(in: "x" + line) == nil)
        #expect(set.reportedOutcome(in: line + " stray") == nil)
        #expect(set.reportedOutcome(in: "ROTATOR-RESULT action=set outcome=changed") == nil)
    }

    /// The one line per host that alerts and the Lambda error show: the outcome, or why there is none.
    @Test func summariesSayWhatHappened() {
        let id = "i-0123456789abcdef0"
        #expect(InstanceResult(instanceId: id, status: "Success", responseCode: 0, outcome: "changed", errorExcerpt: "").summary
            == "\(id): changed")
        #expect(InstanceResult(instanceId: id, status: "Success", responseCode: 0, outcome: nil, errorExcerpt: "").summary
            == "\(id): Success, exit code 0, but no ROTATOR-RESULT line for this action and version")
        #expect(InstanceResult(instanceId: id, status: "Success", responseCode: 1, outcome: nil, errorExcerpt: "").summary
            == "\(id): Success, exit code 1")
        #expect(InstanceResult(instanceId: id, status: "Failed", responseCode: 0, outcome: nil, errorExcerpt: "").summary
            == "\(id): Failed, exit code 0")
        #expect(InstanceResult(instanceId: id, status: "Failed", responseCode: 5, outcome: nil, errorExcerpt: "refused").summary
            == "\(id): Failed, exit code 5: refused")
    }

    @Test func refusesIdentifiersTheDocumentWouldReject() {
        #expect(throws: RotationError.self) {
            try HostCommand(action: .set, secretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x';", versionId: version)
        }
        #expect(throws: RotationError.self) {
            try HostCommand(action: .set, secretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", versionId: "bad")
        }
    }
}
