//! One test per kind of bad input: each names the kind, the line and column,
//! and what the message and hint say.

use hessforge_spec::{ErrorKind, SpecError, load_str};

const HEAD: &str = "name = \"m\"\ntitle = \"M\"\ndescription = \"d\"\n";

/// Load `HEAD` + `body` and return the error (the model must not load).
fn error(body: &str) -> SpecError {
    match load_str("m.toml", &format!("{HEAD}{body}")) {
        Ok(_) => panic!("expected an error for:\n{body}"),
        Err(e) => e,
    }
}

/// Line numbers in these tests count from the first line of `body`.
fn at(e: &SpecError) -> (usize, usize) {
    let (l, c) = e.line_col().expect("error has a location");
    (l - 3, c)
}

const PARAMS: &str = "[parameters]\nw = { shape = [3] }\nb = {}\n[data]\nx = { shape = [3] }\n";

#[test]
fn malformed_toml() {
    let e = error("loss = \"w\n[parameters\n");
    assert_eq!(e.kind(), ErrorKind::Toml);
    assert_eq!(at(&e).0, 1);
    assert!(e.hint().unwrap().contains("derivation-files.md"));
}

#[test]
fn missing_key_is_a_toml_error() {
    let e = error("[parameters]\nw = {}\n");
    assert_eq!(e.kind(), ErrorKind::Toml);
    assert!(e.message().contains("loss"), "{}", e.message());
}

#[test]
fn unknown_key_is_a_toml_error() {
    let e = error("loss = \"w^2\"\nlos = \"w\"\n[parameters]\nw = {}\n");
    assert_eq!(e.kind(), ErrorKind::Toml);
    assert_eq!(at(&e), (2, 1));
}

#[test]
fn expression_that_does_not_parse() {
    let e = error(&format!("loss = \"dot(w, x) + * b\"\n{PARAMS}"));
    assert_eq!(e.kind(), ErrorKind::Syntax);
    // Column of the stray `*` inside the string: `loss = "` is 8 characters.
    assert_eq!(at(&e), (1, 9 + 12));
}

#[test]
fn unknown_symbol_suggests_the_closest_name() {
    let e = error(&format!("loss = \"dot(w, xx) + b\"\n{PARAMS}"));
    assert_eq!(e.kind(), ErrorKind::UnknownName);
    assert_eq!(at(&e), (1, 8 + 8));
    assert_eq!(e.hint(), Some("did you mean `x`?"));
}

#[test]
fn name_defined_twice() {
    let e = error(&format!("loss = \"b\"\n{PARAMS}[constants]\nb = 2\n"));
    assert_eq!(e.kind(), ErrorKind::Duplicate);
    assert_eq!(at(&e), (8, 5));
    assert!(e.message().contains("declared twice"));
}

#[test]
fn definition_defined_twice() {
    let e = error(&format!(
        "loss = \"z\"\n{PARAMS}[[define]]\nname = \"z\"\nexpr = \"b\"\n[[define]]\nname = \"z\"\nexpr = \"b\"\n"
    ));
    assert_eq!(e.kind(), ErrorKind::Duplicate);
    assert_eq!(at(&e).0, 11);
}

#[test]
fn name_shadowing_a_function() {
    let e = error("loss = \"exp^2\"\n[parameters]\nexp = {}\n");
    assert_eq!(e.kind(), ErrorKind::ShadowsFunction);
    assert_eq!(at(&e), (3, 7));
    assert!(e.hint().unwrap().contains("rename"));
}

#[test]
fn shape_mismatch_in_dot() {
    let e = error(
        "loss = \"dot(w, x)\"\n[parameters]\nw = { shape = [10] }\n[data]\nx = { shape = [9] }\n",
    );
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert_eq!(at(&e), (1, 9));
    assert!(
        e.message().contains("length 10") && e.message().contains("length 9"),
        "{}",
        e.message()
    );
}

#[test]
fn index_out_of_range() {
    let e = error(&format!("loss = \"w[4] + b\"\n{PARAMS}"));
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert_eq!(at(&e), (1, 8 + 3));
    assert!(e.hint().unwrap().contains("1..3"));
}

#[test]
fn cycle_between_definitions() {
    let e = error(&format!(
        "loss = \"p\"\n{PARAMS}[[define]]\nname = \"p\"\nexpr = \"q + b\"\n[[define]]\nname = \"q\"\nexpr = \"2 * p\"\n"
    ));
    assert_eq!(e.kind(), ErrorKind::Cycle);
    assert!(e.message().contains("p → q → p"), "{}", e.message());
    assert_eq!(at(&e), (12, 8 + 5));
}

#[test]
fn loss_that_does_not_depend_on_any_parameter() {
    let e = error(&format!(
        "loss = \"z^2\"\n{PARAMS}[[define]]\nname = \"z\"\nexpr = \"sum(x)\"\n"
    ));
    assert_eq!(e.kind(), ErrorKind::NoParameterDependence);
    assert_eq!(at(&e), (1, 8));
    assert!(e.hint().unwrap().contains("w, b"));
}

#[test]
fn unsupported_function() {
    let e = error(&format!("loss = \"erfc(b) + sigmod(b)\"\n{PARAMS}"));
    assert_eq!(e.kind(), ErrorKind::UnsupportedFunction);
    assert_eq!(at(&e), (1, 9));
    let e = error(&format!("loss = \"sigmod(b)\"\n{PARAMS}"));
    assert!(e.hint().unwrap().starts_with("did you mean `sigmoid`?"));
}

#[test]
fn regularizer_must_not_use_data() {
    let e = error(&format!(
        "loss = \"b\"\nregularizer = \"dot(w, x)\"\n{PARAMS}"
    ));
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().contains("(`x_1`)"), "{}", e.message());
    // Through a definition, naming the first data entry it meets.
    let e = error(&format!(
        "loss = \"b\"\nregularizer = \"q^2\"\n{PARAMS}[[define]]\nname = \"q\"\nexpr = \"b * x[2] + x[3]\"\n"
    ));
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().contains("(`x_2`)"), "{}", e.message());
}

#[test]
fn dependence_is_checked_entry_by_entry() {
    // `v` is a vector of two entries: the first is data alone, the second
    // the parameter b. The loss of the first does not depend on θ.
    let define = "[[define]]\nname = \"v\"\nexpr = \"[x[1], b]\"\n";
    let e = error(&format!("loss = \"v[1]^2\"\n{PARAMS}{define}"));
    assert_eq!(e.kind(), ErrorKind::NoParameterDependence);
    let e = error(&format!(
        "loss = \"v[1]^2\"\n{PARAMS}[[define]]\nname = \"u\"\nfor = \"i = 1..3\"\nexpr = \"x[i] + i\"\n{define}"
    ));
    assert_eq!(e.kind(), ErrorKind::NoParameterDependence);
    let body = format!("loss = \"v[2]^2 + v[1]\"\n{PARAMS}{define}");
    let m = load_str("m.toml", &format!("{HEAD}{body}")).expect("the loss depends on b");
    assert_eq!(m.loss().to_input_syntax(), "v_2^2+v_1");
    let defs: Vec<String> = m
        .definitions()
        .iter()
        .map(|d| format!("{} = {}", d.scalar.id, d.expr.to_input_syntax()))
        .collect();
    assert_eq!(defs, ["v_1 = x_1", "v_2 = b"]);
}

#[test]
fn init_of_the_wrong_length() {
    let e = error(&format!(
        "loss = \"b + sum(w)\"\n{PARAMS}[init]\nw = [1, 2]\n"
    ));
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert_eq!(at(&e), (8, 5));
}

#[test]
fn synthetic_draw_with_unknown_distribution() {
    let e = error(&format!(
        "loss = \"b + dot(w, x)\"\n{PARAMS}[synthetic.draw]\nx = \"gauss(0, 1)\"\n"
    ));
    assert_eq!(e.kind(), ErrorKind::UnsupportedFunction);
    assert_eq!(at(&e), (8, 6));
}

#[test]
fn one_line_form_names_file_line_and_column() {
    let e = error(&format!("loss = \"dot(w, xx) + b\"\n{PARAMS}"));
    assert_eq!(
        e.one_line(),
        "m.toml:4:16: error: unknown name `xx` (hint: did you mean `x`?)"
    );
}

const MATRIX: &str =
    "[parameters]\nW = { shape = [2, 3] }\nw = { shape = [3] }\n[data]\nx = { shape = [3] }\n";

#[test]
fn double_star_says_powers_are_caret() {
    let e = error(&format!("loss = \"(dot(w, x) - 1)**2\"\n{MATRIX}"));
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!(at(&e), (1, 9 + 15));
    assert!(
        e.hint().unwrap().contains("powers are written `^`"),
        "{:?}",
        e.hint()
    );
}

#[test]
fn caret_t_is_not_a_transpose() {
    let e = error(&format!("loss = \"w^T x\"\n{MATRIX}"));
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert!(
        e.message().contains("`^T` is not a transpose"),
        "{}",
        e.message()
    );
    assert!(e.hint().unwrap().contains("dot(w, x)"), "{:?}", e.hint());
}

#[test]
fn juxtaposition_is_not_a_product() {
    let e = error(&format!("loss = \"sum(W x)\"\n{MATRIX}"));
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert!(e.hint().unwrap().contains("W @ x"), "{:?}", e.hint());
}

#[test]
fn a_matrix_times_a_vector_with_star_names_the_product() {
    let e = error(&format!("loss = \"sum(W * x)\"\n{MATRIX}"));
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert_eq!(
        e.hint(),
        Some("`*` is element-wise; a matrix times a vector is written `W @ x`")
    );
}

#[test]
fn matrix_product_of_two_vectors_suggests_dot() {
    let e = error(&format!("loss = \"w @ x\"\n{MATRIX}"));
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(e.hint().unwrap().contains("dot(a, b)"), "{:?}", e.hint());
    let e = error(&format!("loss = \"sum(W @ W)\"\n{MATRIX}"));
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(e.message().contains("2×3 matrix"), "{}", e.message());
}

#[test]
fn a_top_level_key_after_a_table_is_located_and_explained() {
    let e = error("[parameters]\nw = {}\n[data]\nx = {}\nloss = \"(w * x)^2\"\n");
    assert_eq!(e.kind(), ErrorKind::Toml);
    assert_eq!(at(&e), (5, 1));
    assert!(
        e.message().contains("`loss` is inside the [data] table"),
        "{}",
        e.message()
    );
    assert!(
        e.hint()
            .unwrap()
            .contains("move `loss` above the first [table]"),
        "{:?}",
        e.hint()
    );
}

#[test]
fn toml_messages_do_not_name_internal_types() {
    let e = error("loss = \"w^2\"\n[parameters]\nw = 3\n");
    assert_eq!(e.kind(), ErrorKind::Toml);
    assert!(!e.message().contains("Raw"), "{}", e.message());
    assert!(e.message().contains("{ shape = [10] }"), "{}", e.message());
}

#[test]
fn a_whole_data_matrix_is_explained_with_the_per_sample_form() {
    let e = error(
        "loss = \"sum((X @ w - y)^2) / 2\"\n[parameters]\nw = { shape = [3] }\n\
         [data]\nX = { shape = [100, 3] }\ny = { shape = [100] }\n",
    );
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(at(&e), (1, 9 + 5));
    assert!(e.message().contains("per sample"), "{}", e.message());
    assert!(
        e.hint().unwrap().contains("x = { shape = [3] }"),
        "{:?}",
        e.hint()
    );
}

#[test]
fn a_character_of_the_notes_with_no_latex_spelling_is_named() {
    let e = error(
        "notes = \"\"\"\nGreek is fine: μ, η, ρ, ‖w‖, x ∈ ℝ, u ⊙ v.\nA snowman ☃ is not.\n\"\"\"\nloss = \"w\"\n[parameters]\nw = {}\n",
    );
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(at(&e), (3, 11));
    assert!(e.message().contains("`☃` (U+2603)"), "{}", e.message());
    assert!(e.hint().unwrap().contains("$…$"), "{:?}", e.hint());
    // The same notes without the snowman load.
    let ok = format!(
        "{HEAD}notes = \"Greek is fine: μ, η, ρ, ‖w‖, x ∈ ℝ, u ⊙ v, $\\\\star$.\"\nloss = \"w\"\n[parameters]\nw = {{}}\n"
    );
    assert!(load_str("m.toml", &ok).is_ok());
}

#[test]
fn entries_that_collide_with_another_name() {
    let head = "loss = \"b + sum(w)\"\n[parameters]\nb = {}\n";
    // Entry 3 of `w` is called `w_3`, the name of a scalar.
    let e = error(&format!("{head}w = {{ shape = [3] }}\nw_3 = {{}}\n"));
    assert_eq!(e.kind(), ErrorKind::Duplicate);
    assert_eq!(at(&e), (5, 7));
    assert_eq!(e.message(), "`w_3` and `w` both have an entry called `w_3`");
    // Entry (1, 2) of a matrix `W` and entry 2 of a vector `W_1`; declared
    // the other way round, the later name is the one pointed at.
    let e = error(&format!(
        "{head}w = {{}}\nW_1 = {{ shape = [2] }}\nW = {{ shape = [2, 2] }}\n"
    ));
    assert_eq!(
        e.message(),
        "`W` and `W_1` both have an entry called `W_1_1`"
    );
    assert_eq!(at(&e).0, 6);
    // A definition's entries collide too, once its shape is known.
    let e = error(&format!(
        "{head}w = {{ shape = [3] }}\n[[define]]\nname = \"u_2\"\nexpr = \"b\"\n[[define]]\nname = \"u\"\nexpr = \"2 * w\"\n"
    ));
    assert_eq!(e.message(), "`u` and `u_2` both have an entry called `u_2`");
    // Names that only look alike do not collide: past the vector's length,
    // an index written with a leading zero, a matrix's row of the wrong
    // length, a name that continues with letters.
    for extra in ["w_4 = {}\n", "w_03 = {}\n", "w_1_1 = {}\n", "w_b = {}\n"] {
        let body = format!("{HEAD}{head}w = {{ shape = [3] }}\n{extra}");
        load_str("m.toml", &body).unwrap_or_else(|e| panic!("{extra}: {}", e.one_line()));
    }
}
