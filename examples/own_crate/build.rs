fn main() {
    hessforge_build::compile("derivations");
}
