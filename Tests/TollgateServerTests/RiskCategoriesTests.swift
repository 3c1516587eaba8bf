import TollgateCore
import XCTest

@testable import TollgateServer

final class RiskCategoriesTests: XCTestCase {
    func testAToolsCategoryIsTheClassifiersAndIsKeptForItsNextCall() {
        let memo = RiskCategories()
        let tool = ToolDescriptor(name: "delete_file", description: "Deletes a file.")
        XCTAssertEqual(memo.category(of: tool), RiskClassifier().classify(tool).category)
        XCTAssertEqual(memo.category(of: tool), .destructive)
        XCTAssertEqual(memo.count, 1)
    }

    func testAToolListedAnewWithAnotherDescriptionOrHintsIsClassifiedAfresh() {
        let memo = RiskCategories()
        let before = ToolDescriptor(name: "handle", description: "Reads the current settings.")
        XCTAssertEqual(memo.category(of: before), .read)
        XCTAssertEqual(memo.category(of: ToolDescriptor(name: "handle", description: "Deletes the named file.")), .destructive)
        var hinted = before
        hinted.annotations = ToolAnnotations(destructiveHint: true)
        XCTAssertEqual(memo.category(of: hinted), RiskClassifier().classify(hinted).category)
        XCTAssertNotEqual(memo.category(of: hinted), .read)
        XCTAssertEqual(memo.category(of: before), .read)
        XCTAssertEqual(memo.count, 3)
    }

    func testAServerThatRenamesItsToolsAtWillCannotGrowTheMemoPastItsBound() {
        let memo = RiskCategories()
        for index in 0...(RiskCategories.maxTools + 10) {
            _ = memo.category(of: ToolDescriptor(name: "tool_\(index)"))
        }
        XCTAssertLessThanOrEqual(memo.count, RiskCategories.maxTools)
        XCTAssertGreaterThan(memo.count, 0)
    }
}
