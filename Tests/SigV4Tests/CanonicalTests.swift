import Testing
@testable import SigV4

/// The canonical form's byte-level helpers at their edges: the neighbours of A-Z (`@` and `[`,
/// `` ` `` and `{`) are not letters, and blanks at either end or in runs are trimmed.
@Suite struct CanonicalTests {
    @Test func headerNamesLowercaseOnlyASCIILetters() {
        #expect(Canonical.lowercased("AZ@[`{az09-_") == "az@[`{az09-_")
        #expect(Canonical.lowercased("X-ÄÖ-Name") == "x-äö-name")
    }

    @Test func headerNamesMatchWhateverTheCaseOfTheirLetters() {
        #expect(Canonical.isNamed("X-AMZ-DATE", "x-amz-date"))
        #expect(Canonical.isNamed("x-Amz-Date", "x-amz-date"))
        #expect(Canonical.isNamed("AUTHORIZATION", "authorization"))
        #expect(Canonical.isNamed("ZZ", "zz"))
        #expect(!Canonical.isNamed("x-amz-dat", "x-amz-date"))
        #expect(!Canonical.isNamed("x-amz-datee", "x-amz-date"))
        #expect(!Canonical.isNamed("x_amz_date", "x-amz-date"))
        #expect(!Canonical.isNamed("@", "`"))
        #expect(!Canonical.isNamed("[", "{"))
        #expect(!Canonical.isNamed("`", "@"))
    }

    @Test func trimAllTrimsBothEndsAndEveryRun() {
        let cases = [("a", "a"), (" a", "a"), ("a ", "a"), (" a b ", "a b"), ("a  b", "a b"), ("a \t\t b", "a b"),
                     ("a b c", "a b c"), ("", ""), ("   ", ""), ("\t", "")]
        for (value, trimmed) in cases {
            #expect(Canonical.trimAll(value) == trimmed, "\(value.debugDescription)")
        }
    }
}
