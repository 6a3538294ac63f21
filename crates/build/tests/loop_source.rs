//! The kernels in index form do not grow with the model: the generated
//! source of a 1 000-feature logistic regression has as many lines as a
//! 10-feature one (only numbers differ), and the same for networks of 4 and
//! 256 hidden units — but for the lane sums written out for the small
//! Hessian terms, which only get fewer as the tensors grow, and the short
//! pass written out whole, which a model too large for it does not have.

fn logistic(f: usize) -> hessforge_spec::Model {
    let text = format!(
        "name = \"logistic\"\ntitle = \"l\"\ndescription = \"l\"\n\
         loss = \"-(y * log(p) + (1 - y) * log(1 - p))\"\n\
         regularizer = \"lambda / 2 * dot(w, w)\"\n\
         [parameters]\nw = {{ shape = [{f}] }}\nb = {{}}\n\
         [data]\nx = {{ shape = [{f}] }}\ny = {{}}\n[constants]\nlambda = 0.01\n\
         [[define]]\nname = \"z\"\nexpr = \"dot(w, x) + b\"\n\
         [[define]]\nname = \"p\"\nexpr = \"sigmoid(z)\"\n"
    );
    hessforge_spec::load_str("logistic.toml", &text).unwrap()
}

fn mlp(h: usize) -> hessforge_spec::Model {
    let text = format!(
        "name = \"mlp\"\ntitle = \"m\"\ndescription = \"m\"\nloss = \"(yhat - y)^2 / 2\"\n\
         [parameters]\nW = {{ shape = [{h}, 2] }}\nc = {{ shape = [{h}] }}\n\
         v = {{ shape = [{h}] }}\nd = {{}}\n\
         [data]\nx = {{ shape = [2] }}\ny = {{}}\n\
         [[define]]\nname = \"h\"\nexpr = \"tanh(W @ x + c)\"\n\
         [[define]]\nname = \"yhat\"\nexpr = \"dot(v, h) + d\"\n"
    );
    hessforge_spec::load_str("mlp.toml", &text).unwrap()
}

/// The source with every number replaced by `#`.
fn shape_of(source: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for ch in source.chars() {
        if ch.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(ch);
        }
    }
    out
}

fn source(m: &hessforge_spec::Model) -> String {
    hessforge_build::loop_kernel_source(m)
        .unwrap()
        .expect("a model with a vector parameter")
}

/// The source split into the part outside the written-out Hessian terms'
/// additions and those functions (`LoopModel::lane_sums` and `row_terms`:
/// a loop nest per Hessian term small enough to be summed lane by lane or
/// added straight into ∇²L, so which terms they have depends on the
/// tensors' lengths; each term's code does not), with `short_pass` and its
/// flag (there when no term is too large for `row_terms`).
fn split_lane_sums(source: &str) -> (String, String) {
    let (mut rest, mut sums, mut inside) = (String::new(), String::new(), false);
    for line in source.lines() {
        if line == "    const WRITES_SHORT_PASS: bool = true;" {
            sums.push_str(line);
            sums.push('\n');
            continue;
        }
        inside |= line.starts_with("    /// The Hessian terms the pass in eight lanes")
            || line.starts_with("    /// The Hessian terms a pass of fewer than")
            || line.starts_with("    /// A pass of fewer than 128 rows one row at a time");
        let part = if inside { &mut sums } else { &mut rest };
        part.push_str(line);
        part.push('\n');
        inside &= line != "    }";
    }
    (rest, sums)
}

/// `small` and `large` have the same source but for numbers, and the
/// large one's lane sums are no longer than the small one's.
fn same_shape(small: &str, large: &str) {
    let ((small, small_sums), (large, large_sums)) =
        (split_lane_sums(small), split_lane_sums(large));
    assert_eq!(small.lines().count(), large.lines().count());
    assert_eq!(shape_of(&small), shape_of(&large));
    assert!(!small_sums.is_empty());
    assert!(large_sums.lines().count() <= small_sums.lines().count());
}

#[test]
fn the_loop_source_is_the_same_length_for_10_and_1000_features() {
    let (small, large) = (source(&logistic(10)), source(&logistic(1000)));
    same_shape(&small, &large);
    assert!(large.contains("for i0 in 0..1000"), "{large}");
}

#[test]
fn the_loop_source_is_the_same_length_for_4_and_256_hidden_units() {
    same_shape(&source(&mlp(4)), &source(&mlp(256)));
}

#[test]
fn a_model_with_a_tensor_parameter_gets_only_the_kernel_in_index_form() {
    for model in [logistic(10), mlp(4), mlp(16), logistic(1000)] {
        assert!(!hessforge_build::straight_line(&model), "{}", model.name);
        assert!(hessforge_build::kernel_file_name(&model).ends_with(".loops.rs"));
        assert_eq!(
            hessforge_build::main_kernel_source(&model).unwrap(),
            source(&model)
        );
    }
}
