import Testing
@testable import Operations

@Suite struct SSMAgentVersionTests {
    /// AWS's minimum for ENV_VAR interpolation, as its documentation states it (not read from the code).
    @Test func theMinimumIsTheFirstAgentWithEnvironmentVariableInterpolation() {
        #expect(SSMAgentVersion.minimumForDocuments.description == "3.3.2746.0")
    }

    @Test(arguments: [
        // Numerically newer, though a string comparison says older ("3.3.10000" < "3.3.2746").
        ("3.3.10000.0", true), ("3.3.2746.0", true), ("3.3.2746.1", true), ("3.10.0.0", true), ("4.0", true),
        ("3.3.2745.9999", false), ("3.3.987.0", false), ("3.2.2746.0", false), ("3.3", false), ("2.3.1644.0", false),
    ])
    func agentsAreComparedNumberByNumber(reported: String, runsTheDocuments: Bool) throws {
        let version = try #require(SSMAgentVersion(reported))
        #expect((version >= SSMAgentVersion.minimumForDocuments) == runsTheDocuments)
    }

    @Test(arguments: ["", "3.3.", ".3", "3.3.2746.0-beta", "v3.3.2746.0", "3..3", "3.3.+2746.0", "3.3.99999999999.0"])
    func anythingButDottedNumbersIsNoVersion(reported: String) {
        #expect(SSMAgentVersion(reported) == nil)
    }
}
