//! The prose of a derivation file (title, description, notes) as LaTeX:
//! which Unicode characters have a LaTeX spelling (the whole Greek
//! alphabet, the symbols of matrix calculus ‖ ∈ ⊙ ⊗ ᵀ, arrows, relations,
//! sub- and superscripts), and `$…$` spans that are LaTeX already. The
//! loader rejects a character with no spelling, naming it, so that no
//! output format ever prints a silent `?`.

/// The LaTeX of one character of prose, if it is not plain ASCII: math-mode
/// commands without the `$` (the writer adds them), text-mode spellings
/// with a leading `!` (dashes, quotes).
pub fn latex_of(c: char) -> Option<&'static str> {
    Some(match c {
        // Greek, lower case.
        'α' => "\\alpha",
        'β' => "\\beta",
        'γ' => "\\gamma",
        'δ' => "\\delta",
        'ε' => "\\varepsilon",
        'ϵ' => "\\epsilon",
        'ζ' => "\\zeta",
        'η' => "\\eta",
        'θ' => "\\theta",
        'ϑ' => "\\vartheta",
        'ι' => "\\iota",
        'κ' => "\\kappa",
        'λ' => "\\lambda",
        'μ' => "\\mu",
        'ν' => "\\nu",
        'ξ' => "\\xi",
        'ο' => "o",
        'π' => "\\pi",
        'ρ' => "\\rho",
        'σ' => "\\sigma",
        'ς' => "\\varsigma",
        'τ' => "\\tau",
        'υ' => "\\upsilon",
        'φ' => "\\phi",
        'ϕ' => "\\varphi",
        'χ' => "\\chi",
        'ψ' => "\\psi",
        'ω' => "\\omega",
        // Greek, upper case (those that differ from Latin letters).
        'Γ' => "\\Gamma",
        'Δ' => "\\Delta",
        'Θ' => "\\Theta",
        'Λ' => "\\Lambda",
        'Ξ' => "\\Xi",
        'Π' => "\\Pi",
        'Σ' => "\\Sigma",
        'Υ' => "\\Upsilon",
        'Φ' => "\\Phi",
        'Ψ' => "\\Psi",
        'Ω' => "\\Omega",
        'Α' => "A",
        'Β' => "B",
        'Ε' => "E",
        'Ζ' => "Z",
        'Η' => "H",
        'Ι' => "I",
        'Κ' => "K",
        'Μ' => "M",
        'Ν' => "N",
        'Ο' => "O",
        'Ρ' => "P",
        'Τ' => "T",
        'Χ' => "X",
        // Calculus and linear algebra.
        '∇' => "\\nabla",
        '∂' => "\\partial",
        'ℓ' => "\\ell",
        '∑' => "\\sum",
        '∏' => "\\prod",
        '∫' => "\\int",
        '√' => "\\surd",
        '∞' => "\\infty",
        '‖' => "\\|",
        '∈' => "\\in",
        '∉' => "\\notin",
        '⊂' => "\\subset",
        '⊆' => "\\subseteq",
        '∪' => "\\cup",
        '∩' => "\\cap",
        '∀' => "\\forall",
        '∃' => "\\exists",
        '⊙' => "\\odot",
        '⊗' => "\\otimes",
        '⊕' => "\\oplus",
        '∘' => "\\circ",
        '·' => "\\cdot",
        '×' => "\\times",
        '÷' => "\\div",
        '−' => "-",
        '±' => "\\pm",
        '∓' => "\\mp",
        '≈' => "\\approx",
        '≠' => "\\neq",
        '≡' => "\\equiv",
        '∝' => "\\propto",
        '∼' => "\\sim",
        '≥' => "\\geq",
        '≤' => "\\leq",
        '≫' => "\\gg",
        '≪' => "\\ll",
        '≻' => "\\succ",
        '≺' => "\\prec",
        '⪰' => "\\succeq",
        '⪯' => "\\preceq",
        '→' => "\\to",
        '←' => "\\leftarrow",
        '↦' => "\\mapsto",
        '⇒' => "\\Rightarrow",
        '⇔' => "\\Leftrightarrow",
        '…' => "\\ldots",
        '⋯' => "\\cdots",
        '½' => "\\tfrac{1}{2}",
        'ℝ' => "\\mathbb{R}",
        'ŷ' => "\\hat{y}",
        'ᵀ' => "^{\\top}",
        '⊤' => "\\top",
        '°' => "^{\\circ}",
        // Superscripts and subscripts.
        '⁰' => "^{0}",
        '¹' => "^{1}",
        '²' => "^{2}",
        '³' => "^{3}",
        '⁴' => "^{4}",
        '⁵' => "^{5}",
        '⁶' => "^{6}",
        '⁷' => "^{7}",
        '⁸' => "^{8}",
        '⁹' => "^{9}",
        '⁻' => "^{-}",
        '⁺' => "^{+}",
        'ⁱ' => "^{i}",
        'ⁿ' => "^{n}",
        '⁽' => "^{(}",
        '⁾' => "^{)}",
        '₀' => "_{0}",
        '₁' => "_{1}",
        '₂' => "_{2}",
        '₃' => "_{3}",
        '₄' => "_{4}",
        'ᵢ' => "_{i}",
        'ⱼ' => "_{j}",
        'ₖ' => "_{k}",
        // Text mode.
        '—' => "!---",
        '–' => "!--",
        '’' => "!'",
        '‘' => "!`",
        '“' => "!``",
        '”' => "!''",
        'é' => "!\\'e",
        'è' => "!\\`e",
        'ü' => "!\\\"u",
        'ö' => "!\\\"o",
        'ä' => "!\\\"a",
        '\u{a0}' => "!~",
        _ => return None,
    })
}

/// The first character of `s` that has no LaTeX spelling (combining tildes
/// and hats over a letter are fine: X̃, â), with its byte offset.
pub fn unsupported(s: &str) -> Option<(usize, char)> {
    s.char_indices().find(|&(_, c)| {
        !(c.is_ascii() || c == '\u{303}' || c == '\u{302}' || latex_of(c).is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_greek_alphabet_and_the_matrix_symbols_have_spellings() {
        for c in "αβγδεζηθικλμνξοπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ‖∈⊙⊗ᵀ".chars()
        {
            assert!(latex_of(c).is_some(), "{c}");
        }
        assert_eq!(unsupported("(μ − y)·x_j, X̃ᵀ"), None);
        assert_eq!(unsupported("a ☃ b"), Some((2, '☃')));
    }
}
