fn main() {
    println!("atenia");
}
