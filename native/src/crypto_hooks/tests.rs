//! Known-answer tests: NIST SP 800-38A (AES modes), RFC 4231 (HMAC), FIPS 180-2
//! (SHA-256), and an RSA signature made by Python's `cryptography` (the primitive
//! PyMongo hands libmongocrypt for GCP).

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector is hex")
}

const NIST_KEY: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
const NIST_PT: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51";

#[test]
fn aes_256_cbc_matches_sp800_38a_f25() {
    let iv = h("000102030405060708090a0b0c0d0e0f");
    let ct = h("f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d");
    assert_eq!(
        aes_256_cbc_encrypt(&h(NIST_KEY), &iv, &h(NIST_PT)).unwrap(),
        ct
    );
    assert_eq!(
        aes_256_cbc_decrypt(&h(NIST_KEY), &iv, &ct).unwrap(),
        h(NIST_PT)
    );
}

#[test]
fn aes_256_cbc_does_not_pad() {
    // libmongocrypt pads; a hook that padded again would add a block.
    let iv = [0u8; 16];
    assert_eq!(
        aes_256_cbc_encrypt(&[7u8; 32], &iv, &[1u8; 32])
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        aes_256_cbc_decrypt(&[7u8; 32], &iv, &[1u8; 32])
            .unwrap()
            .len(),
        32
    );
}

#[test]
fn aes_256_ctr_matches_sp800_38a_f55() {
    let ctr = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    let ct = h("601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5");
    assert_eq!(aes_256_ctr(&h(NIST_KEY), &ctr, &h(NIST_PT)).unwrap(), ct);
    assert_eq!(aes_256_ctr(&h(NIST_KEY), &ctr, &ct).unwrap(), h(NIST_PT));
}

#[test]
fn aes_256_ctr_handles_partial_blocks() {
    let ctr = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    let ct = aes_256_ctr(&h(NIST_KEY), &ctr, &h("6bc1bee22e")).unwrap();
    assert_eq!(ct, h("601ec31377"));
}

#[test]
fn aes_256_ecb_matches_sp800_38a_f15() {
    let ct = h("f3eed1bdb5d2a03c064b5a7e3db181f8 591ccb10d410ed26dc5ba74a31362870");
    assert_eq!(aes_256_ecb_encrypt(&h(NIST_KEY), &h(NIST_PT)).unwrap(), ct);
}

#[test]
fn hmac_sha_256_and_512_match_rfc4231_case_1() {
    let key = [0x0bu8; 20];
    assert_eq!(
        hmac_sha_256(&key, b"Hi There").unwrap(),
        h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    );
    assert_eq!(
        hmac_sha_512(&key, b"Hi There").unwrap(),
        h(
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
           daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
        )
    );
}

#[test]
fn hmac_accepts_keys_longer_than_a_block() {
    // RFC 4231 case 6: a 131-byte key is hashed first.
    let key = [0xaau8; 131];
    assert_eq!(
        hmac_sha_256(
            &key,
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )
        .unwrap(),
        h("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    );
}

#[test]
fn sha_256_matches_fips_180_2() {
    assert_eq!(
        sha_256(b"abc"),
        h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
}

#[test]
fn random_gives_the_requested_count_and_differs() {
    let a = random(32).unwrap();
    let b = random(32).unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert!(random(0).unwrap().is_empty());
}

#[test]
fn rsa_signature_matches_python_cryptography() {
    let der = include_bytes!("../../tests/data/rsa2048-test-only.pk8");
    let expected = include_bytes!("../../tests/data/rsa2048-test-only.sig");
    let msg = b"keyshift known-answer test for RSASSA-PKCS1-v1_5 SHA-256";
    assert_eq!(
        sign_rsassa_pkcs1_v1_5_sha256(der, msg).unwrap(),
        expected.to_vec()
    );
}

#[test]
fn bad_input_is_an_error_never_a_panic() {
    assert!(aes_256_cbc_encrypt(&[0; 31], &[0; 16], &[0; 16]).is_err());
    assert!(aes_256_cbc_encrypt(&[0; 32], &[0; 15], &[0; 16]).is_err());
    assert!(aes_256_cbc_encrypt(&[0; 32], &[0; 16], &[0; 17]).is_err());
    assert!(aes_256_cbc_decrypt(&[0; 32], &[0; 16], &[0; 5]).is_err());
    assert!(aes_256_ctr(&[0; 16], &[0; 16], &[0; 5]).is_err());
    assert!(aes_256_ecb_encrypt(&[0; 32], &[0; 3]).is_err());
    assert!(sign_rsassa_pkcs1_v1_5_sha256(b"not a key", b"x").is_err());
}

#[test]
fn errors_reach_libmongocrypt_without_secret_bytes() {
    let mut out = Vec::new();
    let err = emit(
        aes_256_cbc_encrypt(&[0x42; 31], &[0; 16], &[0; 16]),
        &mut out,
    )
    .unwrap_err();
    let msg = err.message.unwrap();
    assert!(msg.starts_with("keyshift crypto hook: "), "{msg}");
    assert!(!msg.contains("42") && !msg.contains("66"), "{msg}");
}

#[test]
fn output_larger_than_the_buffer_is_an_error() {
    let mut buf = [0u8; 4];
    let mut out: &mut [u8] = &mut buf;
    assert!(emit(Ok(vec![1; 8]), &mut out).is_err());
}
