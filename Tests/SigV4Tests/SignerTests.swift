import SigV4
import Testing

let exampleCredentials = Credentials(
    accessKeyId: "AKIDEXAMPLE",
    secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    sessionToken: nil
)
let exampleTime = AmzTime(epochSeconds: 1_440_938_160)

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

func signedHeaders(ofAuthorization authorization: String?) -> String? {
    guard let authorization, let start = authorization.firstRange(of: "SignedHeaders=") else { return nil }
    return String(authorization[start.upperBound...].prefix { $0 != "," })
}

@Suite struct SignerStageTests {
    let signer = SigV4Signer(credentials: exampleCredentials, region: "us-east-1", service: "service")

    @Test func signingKeyMatchesAWSDocumentationExample() {
        let iam = SigV4Signer(credentials: exampleCredentials, region: "us-east-1", service: "iam")
        #expect(hexString(iam.signingKey(date: "20150830"))
            == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
    }

    @Test func sha256OfEmptyInput() {
        #expect(Hashing.sha256Hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func hmacMatchesKnownVectors() {
        // RFC 4231 test case 2.
        let mac = Hashing.hmacSHA256(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8))
        #expect(hexString(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Empty arrays reach libcrypto as NULL pointers with length 0.
        #expect(hexString(Hashing.hmacSHA256(key: [], data: []))
            == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    @Test func transportHeadersAreSentButNotSigned() {
        let request = SigningRequest(method: "POST", path: "/", headers: [
            ("Host", "example.amazonaws.com"), ("User-Agent", "rotator/1"), ("Expect", "100-continue"),
            ("Content-Length", "2"), ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "secretsmanager.GetSecretValue"), ("X-Amzn-Trace-Id", "Root=1-abc"),
        ], body: Array("{}".utf8))
        #expect(signer.canonicalRequest(request, amzDate: exampleTime.amzDate).signedHeaders
            == "content-type;host;x-amz-date;x-amz-target")
        let sent = signer.sign(request, at: exampleTime)
        #expect(header("User-Agent", in: sent) == "rotator/1")
        #expect(header("Expect", in: sent) == "100-continue")
    }

    /// Trimall makes any run of blanks one space, a single tab included (the suite's cases only
    /// have runs of spaces and leading or trailing blanks).
    @Test func aLoneTabInsideAHeaderValueIsSignedAsOneSpace() {
        for (value, canonical) in [("a\tb", "a b"), ("a b\tc", "a b c"), ("a \t b", "a b"), ("\ta\t", "a")] {
            let request = SigningRequest(method: "GET", path: "/", headers: [("Host", "example.amazonaws.com"), ("My-Header", value)])
            let (text, _) = signer.canonicalRequest(request, amzDate: exampleTime.amzDate)
            #expect(text.contains("\nmy-header:\(canonical)\n"), "\(value.debugDescription): \(text)")
        }
    }

    @Test func hostWithPortIsSignedAsGiven() {
        let request = SigningRequest(method: "GET", path: "/", headers: [("Host", "localhost:8080")])
        let (canonical, signed) = signer.canonicalRequest(request, amzDate: exampleTime.amzDate)
        #expect(canonical.contains("\nhost:localhost:8080\n"))
        #expect(signed == "host;x-amz-date")
    }

    @Test func queryIsEncodedAndSortedWithEmptyValues() {
        let request = SigningRequest(method: "GET", path: "/", query: [("b", ""), ("a", "x y/z"), ("a", "1")])
        let canonical = signer.canonicalRequest(request, amzDate: exampleTime.amzDate).canonical
        #expect(canonical.split(separator: "\n", omittingEmptySubsequences: false)[2] == "a=1&a=x%20y%2Fz&b=")
    }

    @Test func queryNamesHaveTheirSlashEncodedToo() {
        let request = SigningRequest(method: "GET", path: "/", query: [("a/b", "c/d")])
        let canonical = signer.canonicalRequest(request, amzDate: exampleTime.amzDate).canonical
        #expect(canonical.split(separator: "\n", omittingEmptySubsequences: false)[2] == "a%2Fb=c%2Fd")
    }

    @Test func wirePathIsEncodedAgain() {
        // Non-S3 services sign the already-encoded path encoded once more.
        let request = SigningRequest(method: "GET", path: "/a%20b/./c/")
        let canonical = signer.canonicalRequest(request, amzDate: exampleTime.amzDate).canonical
        #expect(canonical.split(separator: "\n")[1] == "/a%2520b/c/")
    }

    /// Every ASCII byte: RFC 3986's unreserved characters stay, everything else is %XX (uppercase).
    @Test func uriEncodingOfEveryASCIICharacter() {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".unicodeScalars)
        let hex = Array("0123456789ABCDEF")
        for value in UInt8(0)...UInt8(0x7F) {
            let scalar = Unicode.Scalar(value)
            let expected = unreserved.contains(scalar) ? String(scalar) : "%\(hex[Int(value / 16)])\(hex[Int(value % 16)])"
            #expect(URIEncoding.encode(String(scalar), encodeSlash: true) == expected, "\(value)")
            #expect(URIEncoding.encode("a" + String(scalar), encodeSlash: false) == "a" + (scalar == "/" ? "/" : expected), "\(value)")
        }
    }

    @Test func uriEncodingKeepsOnlyUnreserved() {
        #expect(URIEncoding.encode("Az09-._~ /%ሴ", encodeSlash: true) == "Az09-._~%20%2F%25%E1%88%B4")
        #expect(URIEncoding.encode("/a b/", encodeSlash: false) == "/a%20b/")
    }
}

@Suite struct SignTests {
    let request = SigningRequest(method: "POST", path: "/", headers: [("Host", "sns.us-east-1.amazonaws.com")])

    @Test func sessionTokenIsAddedAndSigned() {
        let credentials = Credentials(accessKeyId: "AKID", secretAccessKey: "secret", sessionToken: "TOKEN")
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "sns")
        let sent = signer.sign(request, at: exampleTime)
        #expect(header("X-Amz-Security-Token", in: sent) == "TOKEN")
        #expect(header("X-Amz-Date", in: sent) == "20150830T123600Z")
        #expect(signedHeaders(ofAuthorization: header("Authorization", in: sent)) == "host;x-amz-date;x-amz-security-token")
    }

    @Test func eachSigningTimeGetsItsOwnDateAndSignature() {
        let signer = SigV4Signer(credentials: exampleCredentials, region: "us-east-1", service: "sns")
        let first = signer.sign(request, at: exampleTime)
        let retry = signer.sign(request, at: AmzTime(epochSeconds: 1_440_938_161))
        #expect(header("X-Amz-Date", in: retry) == "20150830T123601Z")
        #expect(header("Authorization", in: first) != header("Authorization", in: retry))
    }

    /// A security token already in the request is the caller's when the credentials carry none:
    /// kept (and signed); with session credentials, the credentials' token replaces it, once.
    @Test func aTokenInTheRequestIsKeptUnlessTheCredentialsBringOne() {
        var withToken = request
        withToken.headers.append((name: "x-amz-security-token", value: "CALLER"))
        let plain = SigV4Signer(credentials: exampleCredentials, region: "us-east-1", service: "sns").sign(withToken, at: exampleTime)
        #expect(plain.filter { $0.name.lowercased() == "x-amz-security-token" }.map(\.value) == ["CALLER"])
        let session = SigV4Signer(credentials: Credentials(accessKeyId: "AKID", secretAccessKey: "secret", sessionToken: "TOKEN"),
                                  region: "us-east-1", service: "sns").sign(withToken, at: exampleTime)
        #expect(session.filter { $0.name.lowercased() == "x-amz-security-token" }.map(\.value) == ["TOKEN"])
    }

    /// The signing key is per day: a signer reused across midnight derives the next day's.
    @Test func aSignerUsedOnTheNextDaySignsWithThatDaysKey() {
        let nextDay = AmzTime(epochSeconds: 1_440_938_160 + 86_400)
        let reused = SigV4Signer(credentials: exampleCredentials, region: "us-east-1", service: "sns")
        _ = reused.sign(request, at: exampleTime)
        let fresh = SigV4Signer(credentials: exampleCredentials, region: "us-east-1", service: "sns")
        #expect(header("Authorization", in: reused.sign(request, at: nextDay)) == header("Authorization", in: fresh.sign(request, at: nextDay)))
    }

    @Test func resigningReplacesTheOldDateAndSignature() {
        let signer = SigV4Signer(credentials: exampleCredentials, region: "us-east-1", service: "sns")
        let later = AmzTime(epochSeconds: 1_440_938_200)
        var sentBefore = request
        sentBefore.headers = signer.sign(request, at: exampleTime)
        let resigned = signer.sign(sentBefore, at: later)
        #expect(resigned.map(\.name) == ["Host", "X-Amz-Date", "Authorization"])
        #expect(header("Authorization", in: resigned) == header("Authorization", in: signer.sign(request, at: later)))
    }
}

@Suite struct ValueTests {
    @Test func credentialsNeverPrintSecrets() {
        let credentials = Credentials(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "SECRETKEY", sessionToken: "SESSIONTOKEN")
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "ssm")
        var dumped = ""
        dump(signer, to: &dumped)
        for text in [String(describing: credentials), String(reflecting: credentials), "\(signer)", dumped] {
            #expect(text.contains("AKIDEXAMPLE"))
            #expect(!text.contains("SECRETKEY"))
            #expect(!text.contains("SESSIONTOKEN"))
        }
    }

    @Test func amzTimeFromEpochSeconds() {
        #expect(AmzTime(epochSeconds: 1_440_938_160).amzDate == "20150830T123600Z")
        #expect(AmzTime(epochSeconds: 1_440_938_160).date == "20150830")
        #expect(AmzTime(epochSeconds: 0).amzDate == "19700101T000000Z")
    }

    @Test func amzTimeParsesOnlyTheBasicFormat() {
        #expect(AmzTime(amzDate: "20150830T123600Z")?.amzDate == "20150830T123600Z")
        for bad in ["", "2015-08-30T12:36:00Z", "20150830T123600", "20150830 123600Z", "2015083OT123600Z"] {
            #expect(AmzTime(amzDate: bad) == nil, "\(bad)")
        }
    }
}
