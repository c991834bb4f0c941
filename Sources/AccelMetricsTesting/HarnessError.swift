/// A test set-up that could not be made (a program that did not start, a port nobody bound): the environment
/// failing, thrown so the test reports it instead of trapping.
public struct HarnessError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}
