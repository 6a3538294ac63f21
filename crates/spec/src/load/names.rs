//! Names: which are identifiers, their LaTeX spellings (Greek letters,
//! subscripts), the scalar ids of a tensor's entries, and the closest
//! name for a hint.

pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('_')
}

pub(super) const GREEK: [&str; 24] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
    "omega", "Omega",
];

/// The default LaTeX display of a name: Greek letters, `yhat` → `\hat{y}`,
/// one letter as is, longer names upright.
pub fn default_latex(name: &str) -> String {
    if GREEK.contains(&name) {
        return format!("\\{name}");
    }
    if let Some(base) = name.strip_suffix("hat")
        && base.len() == 1
    {
        return format!("\\hat{{{base}}}");
    }
    if let Some((base, sub)) = name.split_once('_')
        && !base.is_empty()
        && !sub.is_empty()
    {
        return format!("{}_{{{}}}", default_latex(base), sub.replace('_', ","));
    }
    if name.chars().count() == 1 {
        name.to_string()
    } else {
        format!("\\mathrm{{{name}}}")
    }
}

/// The id two tensors' entries would share, found from their names and
/// shapes alone: entry 3 of a vector `w` and a scalar `w_3` are both
/// `w_3`; entry (1, 2) of a matrix `W` and entry 2 of a vector `W_1` are
/// both `W_1_2`. Entry ids are the name and one `_i` per axis, so the
/// longer name must be the shorter one, `_`, and indices within the
/// shorter tensor's first axes.
pub(super) fn shared_entry_id(a: (&str, &[usize]), b: (&str, &[usize])) -> Option<String> {
    let (short, long) = if a.0.len() <= b.0.len() {
        (a, b)
    } else {
        (b, a)
    };
    let rest = long.0.strip_prefix(short.0)?.strip_prefix('_')?;
    // An index as an id writes it: digits without a leading zero.
    let index = |s: &str| {
        (!s.is_empty() && !s.starts_with('0') && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<usize>().ok())
            .flatten()
    };
    let fixed: Vec<usize> = rest.split('_').map(index).collect::<Option<_>>()?;
    let within = fixed.iter().zip(short.1).all(|(i, n)| i <= n);
    if short.1.len() != fixed.len() + long.1.len() || !within {
        return None;
    }
    Some(long.0.to_string() + &"_1".repeat(long.1.len()))
}

pub(super) fn scalar_ids(name: &str, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
    match shape {
        [] => vec![(name.to_string(), vec![])],
        [n] => (1..=*n).map(|i| (format!("{name}_{i}"), vec![i])).collect(),
        [r, c] => (1..=*r)
            .flat_map(|i| (1..=*c).map(move |j| (format!("{name}_{i}_{j}"), vec![i, j])))
            .collect(),
        _ => unreachable!("shapes are checked to have rank ≤ 2"),
    }
}

pub(super) fn subscripted(latex: &str, index: &[usize]) -> String {
    if index.is_empty() {
        return latex.to_string();
    }
    use std::fmt::Write;
    let mut out = String::with_capacity(latex.len() + 3 + 6 * index.len());
    out.push_str(latex);
    out.push_str("_{");
    for (k, i) in index.iter().enumerate() {
        let comma = if k > 0 { "," } else { "" };
        let _ = write!(out, "{comma}{i}");
    }
    out.push('}');
    out
}

pub(super) fn suggestion<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}
