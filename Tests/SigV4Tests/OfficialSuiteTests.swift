import SigV4
import Testing

/// The AWS Signature Version 4 test suite (see testdata/sigv4/README.md).
@Suite struct OfficialSuiteTests {
    /// Cases that do not apply to a client that never sends folded headers or unsigned tokens.
    static let notApplicable: Set<String> = ["get-header-value-multiline", "post-sts-header-after"]

    /// This case's `.req` does not carry its session token: the upstream suite supplies it as
    /// a credential (aws-c-auth's `v4/get-vanilla-with-session-token/context.json`; botocore's
    /// runner reads it back from the `.creq`). Giving it as credentials exercises the path
    /// our client takes: `sign()` adds `X-Amz-Security-Token` and signs it.
    static let sessionTokens = [
        "get-vanilla-with-session-token": "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
    ]

    func signer(for name: String) -> SigV4Signer {
        let credentials = Credentials(
            accessKeyId: "AKIDEXAMPLE",
            secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            sessionToken: Self.sessionTokens[name]
        )
        return SigV4Signer(credentials: credentials, region: "us-east-1", service: "service")
    }

    @Test func everyApplicableCase() throws {
        let root = suiteDirectory()
        try #require(
            isDirectory(root),
            "SigV4 test suite not found at \(root); put it there or set SIGV4_TESTDATA to its folder"
        )
        let cases = try findCases(under: root)
        var run = 0
        for suiteCase in cases where !Self.notApplicable.contains(suiteCase.name) {
            try check(suiteCase)
            run += 1
        }
        let skipped = Set(cases.map(\.name)).intersection(Self.notApplicable)
        #expect(skipped == Self.notApplicable, "the two non-applicable cases must exist, or the count below means nothing")
        #expect(run == cases.count - Self.notApplicable.count, "found \(cases.count) cases, ran \(run)")
        #expect(run > 0)
    }

    func check(_ suiteCase: SuiteCase) throws {
        let name = suiteCase.name
        let request = try parseRequest(try readBytes(suiteCase.file("req")))
        let amzDate = try #require(header("X-Amz-Date", in: request.headers), "\(name): no X-Amz-Date in .req")
        let time = try #require(AmzTime(amzDate: amzDate), "\(name): bad X-Amz-Date \(amzDate)")
        let signer = signer(for: name)

        let canonical = signer.canonicalRequest(request, amzDate: time.amzDate).canonical
        #expect(canonical == (try suiteCase.expected("creq")), "\(name): canonical request")

        let stringToSign = signer.stringToSign(canonicalRequest: canonical, amzDate: time.amzDate)
        #expect(stringToSign == (try suiteCase.expected("sts")), "\(name): string to sign")

        let authorization = header("Authorization", in: signer.sign(request, at: time))
        #expect(authorization == (try suiteCase.expected("authz")), "\(name): Authorization header")
    }
}
