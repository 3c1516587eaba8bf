/// Splits tool names and descriptions into lowercase words, and reduces a word to the form the vocabulary knows.
///
/// `deleteFile`, `delete_file`, `delete-file`, `files.delete` and `BinancePortfolioMarginRenewListenKey` all come
/// apart at their natural boundaries; an acronym stays whole (`HTTPRequest` gives `http`, `request`).
enum ToolWords {
    /// The words of `text`, lowercased, in order. Anything that is not a letter or a digit separates words, and so
    /// does a change of case (`getFile`), the end of an acronym (`SQLQuery`) and a change between letters and digits.
    static func split(_ text: String) -> [String] {
        var words: [String] = []
        var current: [Character] = []

        func flush() {
            if !current.isEmpty { words.append(String(current).lowercased()) }
            current.removeAll(keepingCapacity: true)
        }

        let characters = Array(text)
        for index in characters.indices {
            let character = characters[index]
            guard character.isLetter || character.isNumber else {
                flush()
                continue
            }
            if let previous = current.last {
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                let lowerToUpper = previous.isLowercase && character.isUppercase
                let acronymEnd = previous.isUppercase && character.isUppercase && (next?.isLowercase ?? false)
                let letterDigit = previous.isLetter != character.isLetter
                if lowerToUpper || acronymEnd || letterDigit { flush() }
            }
            current.append(character)
        }
        flush()
        return words
    }

    /// The forms `word` may be a plain inflection of, most likely first: `fetches` gives `fetches`, `fetche`,
    /// `fetch`; `deleted` gives `deleted`, `delete`, `delet`; `entities` gives `entity`.
    static func stems(of word: String) -> [String] {
        var forms = [word]
        func drop(_ suffix: String, add: String = "") {
            if word.count > suffix.count + 2, word.hasSuffix(suffix) { forms.append(String(word.dropLast(suffix.count)) + add) }
        }
        drop("ies", add: "y")
        drop("s")
        drop("es")
        drop("d")
        drop("ed")
        drop("ing", add: "e")
        drop("ing")
        return forms
    }
}
