fn main() {
    println!("pushrace: not yet");
}
