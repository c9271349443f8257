import RotatorJSON
import Testing

// Expected values below are written by hand from RFC 8259, not taken from the parser's output.

@Suite struct JSONRoundTripTests {
    @Test(arguments: [
        #"{"b":1,"a":5432.10}"#,
        #"{"s":"x","n":null,"t":true,"f":false,"arr":[1,-2.5e10,"y",[],{}],"o":{"k":"v"}}"#,
        #"[1.0E+2,-0,0.5e-3,12345678901234567890123,-1.50]"#,
        #"{"password":"p@ss \"quoted\" \\ back","port":5432,"host":"db.internal"}"#,
        #"[]"#,
        #"{}"#,
        #""plain""#,
        #"0"#,
    ])
    func compactDocumentPrintsBackIdentically(_ text: String) throws {
        #expect(try JSON.parse(text).serialized == text)
    }

    @Test func parsesIntoOrderedMembersWithNumberTextKept() throws {
        let value = try JSON.parse(#"{"b":1,"a":5432.10}"#)
        #expect(value == .object([("b", .number("1")), ("a", .number("5432.10"))]))
        // Object equality keeps document order: the same members in another order are another document.
        #expect(value != .object([("a", .number("5432.10")), ("b", .number("1"))]))
    }

    @Test func whitespaceIsAcceptedAndDroppedOnOutput() throws {
        let value = try JSON.parse(" \t\r\n{ \"a\" : [ 1 , 2 ] ,\n\"b\":\t\"c\" }  \n")
        #expect(value.serialized == #"{"a":[1,2],"b":"c"}"#)
    }

    @Test func accessors() throws {
        let value = try JSON.parse(#"{"s":"x","i":-3,"f":5432.10,"e":1e3,"big":12345678901234567890123,"b":false,"a":[1],"n":null}"#)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["i"]?.intValue == -3)
        #expect(value["f"]?.intValue == nil)
        #expect(value["e"]?.intValue == nil)
        #expect(value["big"]?.intValue == nil)
        #expect(value["big"] == .number("12345678901234567890123"))
        #expect(value["b"]?.boolValue == false)
        #expect(value["a"]?.arrayValue == [.number("1")])
        #expect(value["n"] == .null)
        #expect(value["missing"] == nil)
        #expect(value["s"]?.intValue == nil)
        #expect(JSON.string("x")["s"] == nil)
        #expect(JSON.integer(42) == .number("42"))
        #expect(JSON.integer(-7).serialized == "-7")
    }
}

@Suite struct JSONSettingTests {
    @Test func replacesInPlaceKeepingOrder() throws {
        let value = try JSON.parse(#"{"username":"app","password":"old","host":"h","port":5432}"#)
        let updated = value.setting("password", to: .string("new"))
        #expect(updated.serialized == #"{"username":"app","password":"new","host":"h","port":5432}"#)
        // The original value is unchanged.
        #expect(value["password"] == .string("old"))
    }

    @Test func appendsWhenAbsent() throws {
        let value = try JSON.parse(#"{"a":1,"b":2}"#)
        #expect(value.setting("c", to: .bool(true)).serialized == #"{"a":1,"b":2,"c":true}"#)
        #expect(JSON.object([]).setting("k", to: .null).serialized == #"{"k":null}"#)
    }

    @Test func replacesOnlyTheFirstOfDuplicatesAndNeverAddsOne() throws {
        let value = try JSON.parse(#"{"a":1,"b":2}"#).setting("a", to: .integer(9))
        #expect(value.objectValue?.count == 2)
        #expect(value.serialized == #"{"a":9,"b":2}"#)
    }

    @Test func nonObjectIsReturnedUnchanged() {
        #expect(JSON.array([.null]).setting("a", to: .null) == .array([.null]))
        #expect(JSON.string("s").setting("a", to: .null) == .string("s"))
    }
}

@Suite struct JSONEscapeTests {
    @Test func simpleEscapesAreDecoded() throws {
        #expect(try JSON.parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
    }

    @Test func unicodeEscapesAreDecoded() throws {
        #expect(try JSON.parse(#""\u00e9\u00C9\u0041""#) == .string("éÉA"))
        #expect(try JSON.parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try JSON.parse(#""\u20AC""#) == .string("€"))
    }

    @Test func surrogatePairsAreCombined() throws {
        // U+1F600 is D83D DE00 in UTF-16; U+10FFFF is DBFF DFFF; U+10000 is D800 DC00.
        #expect(try JSON.parse(#""\ud83d\ude00""#) == .string("\u{1F600}"))
        #expect(try JSON.parse(#""\uD83D\uDE00""#) == .string("\u{1F600}"))
        #expect(try JSON.parse(#""\udbff\udfff""#) == .string("\u{10FFFF}"))
        #expect(try JSON.parse(#""a\ud800\udc00b""#) == .string("a\u{10000}b"))
    }

    @Test func rawUTF8IsKept() throws {
        let bytes: [UInt8] = [0x22, 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80, 0x22] // "é😀"
        #expect(try JSON.parse(bytes) == .string("é\u{1F600}"))
    }

    @Test func outputEscapesQuotesBackslashesAndWhitespace() {
        #expect(JSON.string("a\"b\\c\nd\te\rf").serialized == #""a\"b\\c\nd\te\rf""#)
        #expect(JSON.object([("k\"ey", .string("v"))]).serialized == #"{"k\"ey":"v"}"#)
    }

    @Test func outputEscapesEveryControlCharacter() throws {
        for value in UInt32(0)..<0x20 {
            let scalar = Unicode.Scalar(value)!
            let printed = JSON.string(String(Character(scalar))).serialized
            #expect(!printed.utf8.contains { $0 < 0x20 }, "U+\(value) printed raw")
            let hex = String(value, radix: 16)
            let unicodeForm = "\"\\u" + String(repeating: "0", count: 4 - hex.count) + hex + "\""
            let shortForms: [UInt32: String] = [0x08: #""\b""#, 0x09: #""\t""#, 0x0A: #""\n""#, 0x0C: #""\f""#, 0x0D: #""\r""#]
            let accepted = [unicodeForm.lowercased(), shortForms[value]].compactMap { $0 }
            #expect(accepted.contains(printed.lowercased()), "U+\(value) printed as \(printed)")
            #expect(try JSON.parse(printed) == .string(String(Character(scalar))))
        }
    }

    @Test func controlCharacterEscapeIsExact() {
        #expect(JSON.string("\u{01}").serialized == #""\u0001""#)
        #expect(JSON.string("\u{1F}").serialized.lowercased() == #""\u001f""#)
        #expect(JSON.string("\u{0}").serialized == #""\u0000""#)
    }

    @Test(arguments: ["\u{1F600}", "é", "\u{7F}", "\u{2028}\u{2029}", "a\u{0}b", "\r\n", "\"\\/", "日本語", "\u{10FFFF}"])
    func stringsSurviveARoundTrip(_ s: String) throws {
        let printed = JSON.object([("k", .string(s))]).serialized
        #expect(try JSON.parse(printed)["k"] == .string(s))
    }
}

@Suite struct JSONErrorTests {
    func parseError(_ text: String) -> JSONParseError? {
        do {
            _ = try JSON.parse(text)
            return nil
        } catch {
            return error
        }
    }

    func parseError(_ bytes: [UInt8]) -> JSONParseError? {
        do {
            _ = try JSON.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [#"{"a":1} x"#, "1 2", "{}}", "[1]]", "truex", "nullnull", #""a""b""#, "0x1F"])
    func trailingGarbageIsRejected(_ text: String) {
        #expect(parseError(text) != nil, "accepted \(text)")
    }

    @Test func trailingGarbageReportsItsOffset() {
        // `{"a":1}` is 7 bytes, then a space: the offending `x` is at byte 8.
        #expect(parseError(#"{"a":1} x"#)?.offset == 8)
    }

    @Test(arguments: [#""abc"#, #"{"a":"b"#, #"""#, #""abc\"#, #"["a\""#])
    func unterminatedStringIsRejected(_ text: String) {
        #expect(parseError(text) != nil, "accepted \(text)")
    }

    @Test(arguments: [#""\x""#, #""\a""#, #""\U0041""#, #""\u12G4""#, #""\u12""#, #""\u""#, #""\'""#, #""\0""#])
    func badEscapeIsRejected(_ text: String) {
        #expect(parseError(text) != nil, "accepted \(text)")
    }

    @Test(arguments: [#""\ud800""#, #""\udc00""#, #""\udfff""#, #""\ud800\u0041""#, #""\ud800x""#,
                      #""\ud800\ud800""#, #""\ude00\ud83d""#, #""\ud83d\n""#])
    func loneSurrogateIsRejected(_ text: String) {
        #expect(parseError(text) != nil, "accepted \(text)")
    }

    @Test(arguments: ["01", "-01", "[00]", "00.5", #"{"port":05432}"#])
    func leadingZeroIsRejected(_ text: String) {
        #expect(parseError(text) != nil, "accepted \(text)")
    }

    @Test(arguments: ["0", "-0", "0.5", "-0.0e0", "10", "0e1"])
    func singleZeroIsFine(_ text: String) throws {
        #expect(try JSON.parse(text) == .number(text))
    }

    /// A number may start with any digit, 9 as well as 1 (and a value with any of true, false, null).
    @Test(arguments: ["9", "19", "-9", "1", "[9,true,false,null]", "true", "false", "null"])
    func everyLeadingDigitStartsANumber(_ text: String) throws {
        #expect(try JSON.parse(text).serialized == text)
    }

    @Test(arguments: ["1.", ".5", "-", "1e", "1e+", "+1", "1.e3", "--1", "NaN", "Infinity", "-Infinity", "1_000"])
    func malformedNumbersAreRejected(_ text: String) {
        #expect(parseError(text) != nil, "accepted \(text)")
    }

    @Test(arguments: ["", " ", "{", "[", #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, "[1,]", "[,1]", "tru", "nul", "fals",
                      "{1:2}", "{'a':1}", "'a'", "[1 2]", #"{"a":1 "b":2}"#, "TRUE", "None",
                      // a literal is its exact word; a member name starts with a quote, not any byte before one
                      "tRue", "nUll", "fAlse", "trux", #"{xa":1}"#, #"{"a":1,xb":2}"#, #"{"a"x1}"#, #"{"a""#, #"{"a" "#])
    func otherSyntaxErrorsAreRejected(_ text: String) {
        #expect(parseError(text) != nil, "accepted \(text)")
    }

    @Test func rawControlCharacterInStringIsRejected() {
        #expect(parseError("\"a\nb\"") != nil)
        #expect(parseError("\"a\tb\"") != nil)
        #expect(parseError([0x22, 0x00, 0x22]) != nil)
    }

    @Test func nestingUpTo64IsAccepted() throws {
        let text = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSON.parse(text).serialized == text)
    }

    @Test func nestingDeeperThan64Throws() {
        let arrays = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(parseError(arrays) != nil)
        let objects = String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(parseError(objects) != nil)
    }

    @Test func hostileNestingThrowsInsteadOfCrashing() {
        #expect(parseError(String(repeating: "[", count: 200_000)) != nil)
        #expect(parseError(String(repeating: #"{"a":["#, count: 100_000)) != nil)
        let closed = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(parseError(closed) != nil)
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22],                   // never valid in UTF-8
        [0x22, 0xC0, 0xAF, 0x22],             // overlong "/"
        [0x22, 0xE2, 0x82, 0x22],             // truncated 3-byte sequence
        [0x22, 0xED, 0xA0, 0x80, 0x22],       // UTF-16 surrogate encoded in UTF-8
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], // above U+10FFFF
        [0x22, 0x80, 0x22],                   // lone continuation byte
        [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0x61, 0xC3, 0x22, 0x7D], // {"a":"a<C3>"}
        [0xFF],                               // outside any string
    ] as [[UInt8]])
    func invalidUTF8IsRejected(_ bytes: [UInt8]) {
        #expect(parseError(bytes) != nil, "accepted \(bytes)")
    }

    @Test(arguments: [
        #"{"password":"hunter2-secret""#,
        #"{"password":"hunter2-secret"}x"#,
        #"{"password":"hunter2-secret\x"}"#,
        #"{"password":"hunter2-secret\ud800"}"#,
        #"{"password":hunter2-secret}"#,
        #"{"password":"hunter2-secret",}"#,
        #"{"password" "hunter2-secret"}"#,
        "{\"password\":\"hunter2-secret\n\"}",
    ])
    func errorDescriptionsDoNotLeakTheInput(_ text: String) throws {
        let error = try #require(parseError(text))
        #expect(!error.description.contains("hunter2"))
        #expect(!error.reason.contains("hunter2"))
        #expect(!String(describing: error).contains("hunter2"))
        #expect(!String(reflecting: error).contains("hunter2"))
    }

    @Test func invalidUTF8ErrorDoesNotLeakTheInput() throws {
        let bytes = Array(#"{"password":"hunter2"#.utf8) + [0xFF] + Array(#""}"#.utf8)
        let error = try #require(parseError(bytes))
        #expect(!error.description.contains("hunter2"))
    }
}

/// An object naming a member twice is refused: readers disagree on which one counts (this type's
/// lookups take the first, Python's json.loads the last), so a secret with two "username"s would
/// be checked as one login and changed on the host as another.
@Suite struct JSONDuplicateMemberTests {
    func parseError(_ text: String) -> JSONParseError? {
        do {
            _ = try JSON.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func aDuplicateAtTopLevelIsRefusedAtTheSecondName() throws {
        // `{"a":1,` is 7 bytes: the second "a" starts at byte 7.
        let error = try #require(parseError(#"{"a":1,"a":2}"#))
        #expect(error.offset == 7)
        #expect(error.reason == #"duplicate member name "a""#)
        #expect(error.description == #"invalid JSON at byte 7: duplicate member name "a""#)
    }

    @Test func aDuplicateInANestedObjectIsRefused() throws {
        // `{"outer":{"k":1,` is 16 bytes.
        let error = try #require(parseError(#"{"outer":{"k":1,"k":1}}"#))
        #expect(error.offset == 16)
        #expect(error.reason.contains("duplicate member name"))
        #expect(parseError(#"[{"x":{"y":[{"z":0,"w":1,"z":null}]}}]"#)?.reason == #"duplicate member name "z""#)
    }

    @Test func theSameNameInSeparateObjectsIsFine() throws {
        let value = try JSON.parse(#"{"a":{"a":1},"b":[{"a":2},{"a":3}],"c":{"b":{"a":4}}}"#)
        #expect(value["a"]?["a"] == .integer(1))
        #expect(try JSON.parse(#"[{"k":1},{"k":2}]"#).arrayValue?.count == 2)
        // Names that differ only in case are different names.
        #expect(try JSON.parse(#"{"Username":"a","username":"b"}"#)["username"] == .string("b"))
    }

    // Equality is after unescaping: every spelling of the same name is the same name.
    @Test(arguments: [
        #"{"username":"app","user\u006eame":"postgres"}"#,
        #"{"user\u006eame":"app","username":"postgres"}"#,
        #"{"\u0075\u0073\u0065\u0072\u006E\u0061\u006D\u0065":"app","username":"postgres"}"#,
        #"{"a\/b":1,"a/b":2}"#,
        #"{"\ud83d\ude00":1,"😀":2}"#,
        #"{"tab\t":1,"tab\u0009":2}"#,
    ])
    func anEscapedDuplicateIsRefused(_ text: String) throws {
        let error = try #require(parseError(text), "accepted \(text)")
        #expect(error.reason.hasPrefix("duplicate member name"))
    }

    @Test func namesEqualOnlyUnderUnicodeNormalizationAreRefusedToo() throws {
        // "é" precomposed (U+00E9) and decomposed (e U+0301): Swift's lookups treat them as one name.
        #expect(parseError(#"{"caf\u00e9":1,"cafe\u0301":2}"#) != nil)
    }

    @Test func theAttackDocumentIsRefused() throws {
        let text = #"{"username":"app","password":"x","engine":"postgres","host":"h","instanceIds":["i-0123456789abcdef0"],"username":"postgres","password":"KNOWN"}"#
        let error = try #require(parseError(text))
        #expect(error.reason == #"duplicate member name "username""#)
        #expect(!error.description.contains("KNOWN") && !error.description.contains("postgres"))
    }

    @Test func theErrorNamesTheMemberButNeverAValue() throws {
        let error = try #require(parseError(#"{"password":"hunter2-secret","password":"hunter3-secret"}"#))
        #expect(error.reason == #"duplicate member name "password""#)
        #expect(!String(describing: error).contains("hunter"))
        #expect(!String(reflecting: error).contains("hunter"))
    }

    @Test func aHostileNameIsEscapedAndCutShort() throws {
        let long = String(repeating: "n", count: 200)
        let error = try #require(parseError(#"{"\#(long)":1,"\#(long)":2}"#))
        #expect(error.reason == "duplicate member name \"" + String(repeating: "n", count: 64) + "\"…")
        let control = try #require(parseError(#"{"a\nb":1,"a\nb":2}"#))
        #expect(!control.description.unicodeScalars.contains { $0.value < 0x20 })
        #expect(control.reason == #"duplicate member name "a\nb""#)
    }
}
