fn main() {
    let name = std::env::args().nth(1).unwrap();
    let m = hessforge_spec::load_file(std::path::Path::new(&format!("derivations/{name}.toml")))
        .unwrap();
    let d = hessforge_symbolic::derive(&m).unwrap();
    println!("seconds {:.3}", d.seconds);
    for lp in &d.local_partials {
        println!("d{}/d{} = {}", lp.of, lp.wrt, lp.expr.to_input_syntax());
    }
    for g in d.gradient.iter().take(3) {
        println!(
            "g {} = {}   paths {:?}",
            g.param,
            g.expr.to_input_syntax(),
            g.paths
        );
    }
    for (j, row) in d.hessian.iter().enumerate().take(3) {
        for (k, h) in row.iter().enumerate().take(3) {
            println!("H{j}{k} = {}", h.to_input_syntax());
        }
    }
    for r in d.regularizer_gradient.iter().take(2) {
        println!("R' {}", r.to_input_syntax());
    }
    if let Some(n) = &d.newton_step {
        for e in n {
            println!("newton {}", e.to_input_syntax());
        }
    }
    if d.hessian.len() > 4 {
        println!("H04 = {}", d.hessian[0][4].to_input_syntax());
    }
}
