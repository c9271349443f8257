import SigV4
import Testing

/// The AWS Signature Version 4 test suite, kept in the repository at Tests/SigV4Tests/Resources/sigv4
/// (see its README.md; Apache-2.0, see its LICENSE and NOTICE).
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
        try #require(isDirectory(root), "SigV4 test suite not found at \(root)")
        let cases = try findCases(under: root)
        try #require(cases.count == Self.expectedCases.count, "found \(cases.count) cases, expected \(Self.expectedCases.count)")
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

    /// Every case of the copy, by name: a suite that went missing, lost cases or was emptied must
    /// fail here rather than pass having checked nothing.
    static let expectedCases: Set<String> = [
        "get-header-key-duplicate", "get-header-value-multiline", "get-header-value-order", "get-header-value-trim",
        "get-unreserved", "get-utf8", "get-vanilla", "get-vanilla-empty-query-key", "get-vanilla-query",
        "get-vanilla-query-order-encoded", "get-vanilla-query-order-key", "get-vanilla-query-order-key-case",
        "get-vanilla-query-order-value", "get-vanilla-query-unreserved", "get-vanilla-utf8-query",
        "get-vanilla-with-session-token",
        // normalize-path/
        "get-relative", "get-relative-relative", "get-slash", "get-slash-dot-slash", "get-slash-pointless-dot",
        "get-slashes", "get-space", "get-special-character",
        "post-header-key-case", "post-header-key-sort", "post-header-value-case",
        // post-sts-token/
        "post-sts-header-after", "post-sts-header-before",
        "post-vanilla", "post-vanilla-empty-query-value", "post-vanilla-query", "post-x-www-form-urlencoded",
        "post-x-www-form-urlencoded-parameters",
    ]

    @Test func theSuiteIsInTheRepositoryAndComplete() throws {
        let root = suiteDirectory()
        try #require(isDirectory(root), "SigV4 test suite not found at \(root)")
        #expect(root.hasSuffix("/Tests/SigV4Tests/Resources/sigv4"), "the suite must be read from the repository: \(root)")
        // The licence notice travels with the data.
        for notice in ["LICENSE", "NOTICE", "README.md"] {
            let size = isFile("\(root)/\(notice)") ? (try readBytes("\(root)/\(notice)")).count : 0
            #expect(size > 0, "\(notice) missing or empty")
        }
        #expect(try readBytes("\(root)/LICENSE").count > 10_000, "LICENSE is not the Apache License 2.0 text")
        let cases = try findCases(under: root)
        #expect(cases.count == Self.expectedCases.count, "found \(cases.count) cases, expected \(Self.expectedCases.count)")
        #expect(Set(cases.map(\.name)) == Self.expectedCases,
                "missing: \(Self.expectedCases.subtracting(cases.map(\.name)).sorted()); unexpected: \(Set(cases.map(\.name)).subtracting(Self.expectedCases).sorted())")
        #expect(Self.notApplicable.isSubset(of: Self.expectedCases))
        // Each case holds everything the check compares, none of it empty.
        for suiteCase in cases {
            for suffix in ["req", "creq", "sts", "authz"] {
                let size = isFile(suiteCase.file(suffix)) ? (try readBytes(suiteCase.file(suffix))).count : 0
                #expect(size > 0, "\(suiteCase.name).\(suffix) missing or empty")
            }
        }
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
