//! What a session list finds a session by without reading its items, which are sealed at rest:
//! the words of the name on its first identity document or registry check, and the country
//! there. A store keeps these beside the session (the words as keyed hashes).

use serde_json::Value;

use crate::FeatureBlock;

/// The words a name is found by: its runs of letters and digits, lower-cased, without repeats.
/// A list's `search` finds a session whose name holds every word of it.
pub fn name_words(name: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// The name and country a list finds a session by, read from the first item of `block`:
/// `full_name` and `issuing_state` of an identity document, `company.company_name` and
/// `company.country_code` of a registry check; the country upper-cased. Other blocks name
/// neither.
pub fn listing_terms(block: FeatureBlock, first: &Value) -> (Option<String>, Option<String>) {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let (name, country) = match block {
        FeatureBlock::IdVerifications => {
            (text(first.get("full_name")), text(first.get("issuing_state")))
        }
        FeatureBlock::RegistryChecks => {
            let company = first.get("company");
            (
                text(company.and_then(|c| c.get("company_name"))),
                text(company.and_then(|c| c.get("country_code"))),
            )
        }
        _ => (None, None),
    };
    (name, country.map(|c| c.to_uppercase()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn words_are_lower_cased_runs_of_letters_and_digits_without_repeats() {
        assert_eq!(name_words("Ana  María GARCÍA-López ana"), ["ana", "maría", "garcía", "lópez"]);
        assert!(name_words(" - , ").is_empty());
    }

    #[test]
    fn terms_come_from_a_document_or_a_company() {
        let document = json!({"full_name": "Ana Example", "issuing_state": "esp"});
        assert_eq!(
            listing_terms(FeatureBlock::IdVerifications, &document),
            (Some("Ana Example".into()), Some("ESP".into()))
        );
        let check = json!({"company": {"company_name": "Acme SL", "country_code": "ES"}});
        assert_eq!(
            listing_terms(FeatureBlock::RegistryChecks, &check),
            (Some("Acme SL".into()), Some("ES".into()))
        );
        assert_eq!(listing_terms(FeatureBlock::EmailVerifications, &document), (None, None));
    }
}
