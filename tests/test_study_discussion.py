"""The report's study paragraphs are computed from the run summaries: check they state the right numbers."""

from genlab.report.studies import fid_rebound, spread, study, time_to_fid


def summary(seed, **metrics):
    return {"seed": seed, "wall_time_s": 600.0, "metrics": metrics}


def test_spread_gives_mean_and_sample_std_over_seeds():
    runs = [summary(0, fid=10.0), summary(1, fid=14.0)]
    assert spread(runs, "fid") == "12 &plusmn; 2.8 (n=2)"
    assert spread([summary(0, steps=20), summary(1, steps=20)], "steps") == "20 (n=2)"
    assert spread([summary(0, fid=float("nan"))], "fid") == "-"


def test_time_to_fid_is_the_first_evaluation_at_or_below_the_threshold():
    run = summary(0, val_fid_curve=[[100, 30.0, 50.0], [200, 60.0, 19.0], [300, 90.0, 12.0]])
    assert time_to_fid(run, 20.0) == 60.0
    assert time_to_fid(run, 5.0) is None


def test_gan_discussion_counts_seeds_where_the_gradient_penalty_wins_and_checks_targets():
    curve = [[100, 60.0, 40.0], [200, 120.0, 10.0]]
    runs = {
        "gan-hoda": [summary(s, test_fid=8.0, test_confident_share=0.93, test_class_coverage=0.99, best_val_fid=5.0,
                             val_fid_curve=curve) for s in (0, 1)],
        "wgan-hoda": [summary(0, test_fid=30.0, last_clipped_fraction=0.8, critic_weight_std=0.009),
                      summary(1, test_fid=20.0, last_clipped_fraction=0.7, critic_weight_std=0.009)],
        "wgangp-hoda": [summary(0, test_fid=12.0, critic_weight_std=0.05, wasserstein_fid_spearman=0.9),
                        summary(1, test_fid=25.0, critic_weight_std=0.05, wasserstein_fid_spearman=0.8)],
    }
    text = " ".join(study("gan").discuss(runs))
    assert "Best unconditional model by confident share: GAN (93.0%" in text and "targets 85% and 0.95: met" in text
    assert "test FID below WGAN's on 1 of 2 seeds" in text
    assert "WGAN-GP 0.85" in text
    runs["gan-hoda-conditional"] = [summary(0, test_fid=1.0, test_confident_share=0.95, test_class_coverage=1.0)]
    runs["wgangp-hoda"][0]["metrics"]["test_confident_share"] = 0.7
    text_with_conditional = " ".join(study("gan").discuss(runs))
    assert "The conditional GAN by confident share: conditional GAN (95.0%" in text_with_conditional
    assert "targets 90% and 0.95: met" in text_with_conditional
    assert "Best unconditional model by confident share: GAN (93.0%" in text_with_conditional
    assert "WGAN-GP: 70.0% of samples confidently classified (target 80%: not met)" in text_with_conditional
    assert "time to a validation FID of 10 (2x the best model's final best): GAN 2.0 min (2/2 seeds)" in text


def test_fid_rebound_is_the_largest_rise_above_the_best_so_far():
    curve = [[100, 1.0, 10.0], [200, 2.0, 5.0], [300, 3.0, 7.5], [400, 4.0, 4.0], [500, 5.0, 6.0]]
    assert fid_rebound(summary(0, val_fid_curve=curve)) == 0.5  # 7.5 after a best of 5 (and 6 after 4)
    assert fid_rebound(summary(0, val_fid_curve=curve[:2])) == 0.0
    assert fid_rebound(summary(0, val_fid_curve=curve[:1])) is None


def test_gan_discussion_reads_stability_from_the_validation_curves():
    rising = [[100, 1.0, 10.0], [200, 2.0, 5.0], [300, 3.0, 10.0]]
    falling = [[100, 1.0, 10.0], [200, 2.0, 5.0], [300, 3.0, 4.0]]
    runs = {"wgan-hoda": [summary(0, test_fid=9.0, best_step=200, val_fid_curve=rising),
                          summary(1, test_fid=8.0, best_step=300, val_fid_curve=falling)]}
    text = " ".join(study("gan").discuss(runs))
    assert "WGAN (clip) +50% (worst seed +100%; best generator at the last evaluation on 1 of 2 seeds)" in text


def test_gan_discussion_says_which_models_draw_from_label_free_clusters_and_how_pure_they_are():
    shares = [0.25] * 4
    runs = {"gan-hoda": [summary(s, test_fid=2.0, test_confident_share=0.9, test_class_coverage=1.0,
                                 train_cluster_purity=purity, train_cluster_shares=shares)
                         for s, purity in ((0, 0.8), (1, 0.9))],
            "wgangp-hoda": [summary(0, test_fid=3.0, test_confident_share=0.8, test_class_coverage=1.0)]}
    text = " ".join(study("gan").discuss(runs))
    assert "GAN draw from a mixture prior of 4 clusters" in text and "WGAN-GP draw" not in text
    assert "the clusters' purity is GAN 0.85 &plusmn; 0.071 (n=2)" in text


def test_ebm_discussion_times_each_variant_to_a_shared_fid_level():
    runs = {"ebm-cifar10-noise": [summary(0, fid=200.0, fid_curve=[[100, 60.0, 260.0], [200, 120.0, 210.0]])],
            "ebm-cifar10-buffer-decay": [summary(0, fid=120.0, fid_curve=[[100, 60.0, 170.0], [200, 120.0, 120.0]])]}
    text = " ".join(study("ebm").discuss(runs))
    assert "40% lower; the target is 30% lower: met" in text
    assert "first fell to 180 (1.5x the best FID any variant reached): noise never, buffer-decay 1.0 min (1/1 seeds)" in text


def test_ebm_discussion_sets_informative_starts_against_the_draws_alone():
    runs = {"ebm-cifar10-gaussian": [summary(0, fid=72.0, randnet_fid=0.05, start_fid=76.0, start_randnet_fid=0.2),
                                     summary(1, fid=74.0, randnet_fid=0.07, start_fid=78.0, start_randnet_fid=0.2)]}
    text = " ".join(study("ebm").discuss(runs))
    assert ("ebm-cifar10-gaussian: its chains start from draws of Gaussians fitted to the training images, which "
            "alone score domain FID 77 &plusmn; 1.4 (n=2) and label-free FID 0.2 (n=2); after the chains: "
            "73 &plusmn; 1.4 (n=2) and 0.06 &plusmn; 0.014 (n=2)") in text
    assert "ebm-cifar10-noise" not in text and "Stability" not in text  # no line for numbers the runs lack


def test_ebm_discussion_finds_the_digit_whose_energy_gap_ran_away():
    def cond(seed, ones_gap):
        accuracy = [0.9] * 10
        accuracy[1] = 0.2
        return summary(seed, class_accuracy=0.83, min_class_accuracy=0.2, per_class_accuracy=accuracy,
                       per_class_energy_data=[0.5] * 10,
                       per_class_energy_samples=[0.5 + (ones_gap if c == 1 else 0.2 * (-1) ** c) for c in range(10)])
    text = " ".join(study("ebm").discuss({"ebm-mnist-cond": [cond(0, 16.0), cond(1, 18.0)]}))
    assert "targets 90% and 75%: not met), after 10.0 min of training (within 20: met" in text
    assert "0: +0.2, 1: +17.0, 2: +0.2, 3: -0.2" in text
    assert "fewest correct samples (1, 20%) has a gap of +17.0, the others at most 0.2: its chains stall" in text
    balanced = " ".join(study("ebm").discuss({"ebm-mnist-cond": [cond(0, 0.5)]}))
    assert "has a gap of +0.5" in balanced and "chains stall" not in balanced


def test_jem_discussion_checks_jempp_quality_at_half_the_steps_and_divergences():
    jem = [summary(s, fid=40.0, sgld_steps_per_iteration=20, divergence_events=1, test_accuracy=0.98) for s in (0, 1)]
    jempp = [summary(s, fid=11.0, sgld_steps_per_iteration=5, divergence_events=0, test_accuracy=0.99) for s in (0, 1)]
    text = " ".join(study("jem").discuss({"jem-mnist": jem, "jempp-mnist": jempp}))
    assert "FID 11 vs JEM's 40 with 25% of JEM's SGLD steps per iteration" in text
    assert "at most 50% of the steps: met); divergence events 0 vs 2 (no more than JEM)" in text
    jempp[0]["metrics"]["fid"] = 80.0
    assert "at most 50% of the steps: not met" in " ".join(study("jem").discuss({"jem-mnist": jem, "jempp-mnist": jempp}))


def test_jem_discussion_gives_the_calibration_and_jempp_targets_and_the_cifar_runs():
    jem = [summary(0, ece=0.025, classifier_ece=0.005, test_accuracy=0.978, conditional_accuracy=0.2)]
    jempp = [summary(0, ece=0.011, classifier_ece=0.006, test_accuracy=0.9903, conditional_accuracy=1.0)]
    cifar = [summary(0, test_accuracy=0.848, classifier_test_accuracy=0.862, fid=84.0)]
    text = " ".join(study("jem").discuss({"jem-mnist": jem, "jempp-mnist": jempp, "jempp-cifar10": cifar}))
    assert "(its classifier 0.005; +0.020, target at most +0.01: not met)" in text
    assert "(its classifier 0.006; +0.005, target at most +0.01: met)" in text
    assert "test accuracy 0.9903 (at least 0.99: met)" in text and "(at least 0.9: met), 10.0 min" in text
    assert "CIFAR-10 (quick preset, a CPU demonstration): JEM++ test accuracy 0.848 (its classifier 0.862)" in text


def test_classifier_discussion_checks_jem_starting_points_against_the_minimum():
    runs = {"classifier-cifar10": [summary(0, test_accuracy=0.90)],
            "classifier-cifar10-seed1-nobn": [summary(1, test_accuracy=0.642)],
            "classifier-mnist-seed1": [summary(1, test_accuracy=0.993)]}
    text = " ".join(study("classifiers").discuss(runs))
    assert "classifier-cifar10-seed1-nobn 64.20% (not met), classifier-mnist-seed1 99.30% (met)" in text


def test_dvae_discussion_says_what_the_codes_add_over_pixels_and_whether_the_quantiser_is_why():
    def runs(codes, pixels_embedded, autoencoder):
        return {"dvae-mnist": [summary(s, cluster_hungarian_accuracy=codes, pixels_plain_hungarian_accuracy=0.56,
                                       codes_plain_hungarian_accuracy=0.57, cluster_nmi=0.9, cluster_ari=0.9,
                                       pixels_embedded_hungarian_accuracy=pixels_embedded,
                                       ae_embedded_hungarian_accuracy=autoencoder) for s in (0, 1)]}
    text = " ".join(study("dvae").discuss(runs(0.977, 0.827, 0.976)))
    assert "the codes add 0.150 over pixels" in text and "not the quantisation" in text
    text = " ".join(study("dvae").discuss(runs(0.977, 0.827, 0.90)))
    assert "the codes add 0.150 over pixels" in text and "not the quantisation" not in text
    text = " ".join(study("dvae").discuss(runs(0.895, 0.894, 0.895)))
    assert "more than the discrete codes, makes the images clusterable" in text and "not the quantisation" not in text
