//! Known-answer vectors for the start-up probe: one key per algorithm and size, and a
//! signature of [`MESSAGE`] made with the private half (generated once with Python
//! `cryptography`, then the private keys were discarded). Base64url, no padding. Shared by the
//! crypto_mb and OpenSSL engines.

/// The signed message.
pub(crate) const MESSAGE: &[u8] = b"verdict crypto_mb start-up probe";

/// An RSA key (e = 65537) with an RS256 and a PS256 signature of [`MESSAGE`].
pub(crate) struct RsaProbe {
    pub(crate) bits: u32,
    pub(crate) n: &'static str,
    pub(crate) rs256: &'static str,
    pub(crate) ps256: &'static str,
}

/// An EC key with an ES256, ES384 or ES512 signature (JOSE `r || s`) of [`MESSAGE`].
pub(crate) struct EcProbe {
    pub(crate) x: &'static str,
    pub(crate) y: &'static str,
    pub(crate) sig: &'static str,
}

/// RSA-2048, RSA-3072 and RSA-4096.
pub(crate) const RSA: [RsaProbe; 3] = [
    RsaProbe {
        bits: 2048,
        n: "lBf8UIAHjws1A07Rt7J13kWKnrO8YBrNo9LRJC3evpN7I7VYwvCHvUYLvMxlZSy4y8SDaBP5h7fP0WNPGsS6KCkK6mCbKqPlFTGrg9CJNFQ7zjvyf7z5ls9xzhwGd8XPdix6uFsxdmd08jk4HuCCEWexu5FtG6x-f4x8JIMdDeQgyv0x9guHPzkd2UtPcC6xzO-0XIiOvwYWAh6o1FGyTHs41CEjhl91C4XzH5_gQAdB0h-WPLgCdooDnyEjiUTzuNrOlHjm9Mcps6oY1l5q6hIO2gRxsmJL94rrXXmlnhkX70XPQVp5ucmEr5a_PDmclSWENaW2MHtU0AVOGNWXNw",
        rs256: "H_sgwU0p9BWj_JNpDGNcR-laCsIjMJT_XyTewCAWIJNsMj1bUP7-BFDzzNhTDl8zz4l3SXWupf4mxHKqEH6g8C3rifI04tVCQn4wFEcZUp0dkS9H_oX2dERh7xQuywTcEyfvtO_gNIuVHcq8TDXuGNDjKKcO1yWRSudHXvgPhiUlcXM_iM_hyvc84CfXgdSOWWo4O11cCI2WQ5C0bWXInReQFCpFvWtHcbMgTREqM7RTqyq8J1Epc07TdA1C6oNzb5_2pf78dXNhxRKgVRzHJNNsXrDHQ2K8f2QZP1RuC5MIyjWi6l8ud0iEuphwZfChXeRBOVzKbiF7cKRYA_ap6A",
        ps256: "g8D7snY3ZBN9iVsIbfxtFEwKf0FGIBlVletCsjZKydqSYcmd3uKHXoppFA_nyhHWUXe07M8cFesNQ7Lva0zWczt4vRpj6-TeHTZ3ArsbyVh3gbmYmXRh1FmEJZ6ttfjMZkEfeh4_5UzgU1mJYgy-_mQin9NRzZFaBRd5aPPTDuR4URYCsC-JVgLSkOE9nvBESkzWhKggHSqXfYgb7fRR74z06uxg3nAKxLy4FH1brQB9oKhwFLiY_GRkkWN-a7wVEchzvrI_ryLWrSlUu5LKZYHKQhqKsytsE54L-vYdX9y5QlDfFAOXjp3V-Gk3NQZWVsQyAYf30OjBNPcqA0UMTQ",
    },
    RsaProbe {
        bits: 3072,
        n: "pbPX0zUC9yNFRAJe92X0xFvsO0hbTYEPVq_WbTmPd2l__N86d4HDoIqG_gdfacFlrjqBhjj5Bep-9RHrxWrBAMDmc-VW1qUwvBIGlcB6PqNRT91Kj_FnlQatrpHiCuettNDrmX-1aJR5oIUz7HxgBLay9vacYJkGFugxsQTlgkJgPkB1brdUuosVgEO5DXprk3MWOeZMWeJhcThzypgHozNPvqY__7iFLxKqqT4bSWVXqxqOwXeeFIRaPSJti3uqv7aVw24ZO7fok-E1Y0cZrUpwjrp1jgi20P7_gi9udUDZwekfxUh8Oj0V07M5GAYEui-zZtCqb7_7d4e_zACRFiCq9478N_VR2xpaZzqMAjXiLuSTQoGw2s09lGL1Gt4esO5BImGWU-HM13MT_vIWDRPyY9ZGQbrTnGVZQy145zXXu5bcPFTQBCBGF2-0mu1QKJcVkcn4IWWLuDWwb-LsrJT3Qvs7--O0DsQA1MFnC5-rEu-dFlNMbwo6N41dKVs1",
        rs256: "NhGQ7fFL9YGCSpdFwmXi6ttdh8LNjEL3lnXJRyLPfmN8BSIG2qVzx0eEMkDG88qt9XmX4HhAMJsyw_Wnhjc8K1Oe7POdruV9xGRuJY-mLMT6_lFXEBOaPNhoHi18wQ0hX_N4aDy25axXmsGQUlLthUgTiK18_S_nZW9Bi11yyiLCrHGikmuWzqzX-0cDh1L2QYBqJ9aresXFHqgME8VUQuPa9V7PHqukoSmz5yU-U-dMFHdpfAo4dc8LfoNM0XQWvLsSH-uQaAKR3l-WI2BbJOsEOzjHBjQwc7AFBsM0Cm5H95JkvcVZUaUm2JmFy-ZlWs5rycwZ1J30P6TRoHwRiIW4Skc2GcqarvOHGLsJ47yawC3YkrtxNwC1dTRQVvkA4H5ephvXz46V1H13nb7HR-VLJKu9vmV7-Rm-mkHrGo1vR39_WIlrJo1dfWzxWUtWSmEvZ8Psp9hF0lKasqCUATTvRyzLp5AJS9g2o7SByjg9u0wMX-mGfsziPMJvuhjN",
        ps256: "bjDEXRx7upGczbukRSMfG8KECOdvpdvCwqTtkXQvWcoTavOSlFcbAjr8T0gMgZTkRBFB_gde-22nSgDEgniVD1C1XqLbbCNT2n21dPPcpf8pFAgf5TdroiM-HnTGK9QvuTbbEDlfXyyFMmZqIDxvzWzcTdGgNLRlmMRPkzqvfRYtoL3uKJGZ9dL9wbwMSlJbVu6Ci8bhJkfVtrziVQWE5vxi15PigFL3cSOdRgVKiQZwZj5aqP574jttUi3w31kZfLsh7GERDU6UBATsnd-zZg0NVBhih_8CKG8OpY5-0_TcLgip4BQz20aF4g1Xj-4tEkTqE9RukZkkqj7JvqSc3j8BM2oi75TAUMz31qqTnT87B4xqH_C9W1RdkNyOL9REMjo4zWLyxHz8o2uO3m94FG-Ql8lznccPexaxSSVJZgdGaSPO5SH0lteOG59GI6DR3PXn6OF-Fi0v_Wrg5pWXV83xCmalt-4wD65ceV8IOQTqRlDIm0S8q0c8w_mgpPpG",
    },
    RsaProbe {
        bits: 4096,
        n: "w20hWazWvCWWvlTEYpqpIi2WYedq6t53m-4ZajTX80TaIezd_mYJjdxoxKEesB-Q-EzTbQ45TzODMw_1dGSOP58c9IKFoieoeF1ga-i8L3k5VRqAgR0y_merYmrUUDHkeF2hssdikpF6S9QvYcj8BqeqiwpxXxhrq92PtumjOVGjgMT1c8Ier13BOB1T0GW7fPi48fndw8qj6Pyr-m6NhJ6Ru-wLtQ9NmJWHegYy-zo0wCXgPuvhiXRxeemqvXwHNrd_PRWcSxSeFwieW-lsWWdfD923wInUdxhTn40SbkhBvfdubZoXL3etLmWRXazHoq7ufUNWauMKXdnzEPctLxr7kIiWIWl_aKE7afKRvlSi2_AryTexUOmw7G8DPsXFtS6kFAsCyRQKBFoX3vTX3tj1beUaNz9qEO0AQ9Igc-0sDQRK-kYA-0gvwnCMyfPu9RcxVdi__JgRiWL04109av1rBO9okQNFrkCbAcN2RTBxaFuU4rHRQugV0mg8Rin9AIVLpkSdApMduXuJEUxnwSTr5ZxV5LCly_imdgZCikbxk6PBAWqN8QtM2K_cpy5oWDRRmDttt5g2BnQ8NRBAUn9snfARG59qEmdCQtXXAQ5St1GK_btvFhjJa9sAVXYDnsZZ3WGPTkidPMU7u5qE_vahmWid-DyL_-XJom24zzE",
        rs256: "mCLdPirwbs1oHFR6DRlvukaE91lGCUmbyyhYPakUUa2BqLLhmVRkHh8wDSCWTAmULK2Q7J-62eVpsPA8lsB3ftIb4PKhC-T_hTFeEv0SJWQ1OkhNsHcd4DXFgFFpBxSJVGbcZ_WFrePfzARLa10CRR5b9XmcppuNKGT09TPvfY57qv4XoEijY1RiKjg962qad9L9ET6rouTMCmqIkor_ufXEArZp_aBCoMv6LDPh9dxNkZm-qkPoXaJjsK6jbPxNnLqlY1noGxHy3vXosJRtcV8EZ8SJG5oMRdzNHITElEJqAKhLlrq7T2pqDBnURUObMipcZNpMifurrZeTjBZNgDr0EmkFF2tZsYNwYZTPnhj926EIqhu204I0ulgv_BLd-zMjAmhIbzXI5FaZeWEaeFs8mY-frL-J3gIQbk1isbRe75ZP3tnlQGVdwTIDE-EH24Xnfulp96cX6GaHAZwsdaFS6WaZfy4yxHc5E6HHc-KIC4_huL7ZysU4uKMON3wiD1GCdNrKj-lqaYjWz3mGa0snLM_PgZTHvQVpDBl80k5LKWdK3Mm3NFS9x88pYFMBQgBy38nEjKYnsHdqB7KeDLoCpHFBfwlEmvche4K99TTPcKL65NS5V9HnOfGxJ5Q2p5HZ-26SXutHWINNbxOWsn97bppa_AA-KTSWpunSWxY",
        ps256: "emo5fNIqfhp1Wv1dL0bsUEc9-DdUkkEEupg_Psj-9J_n-XMoXL46kFQOgZZ_BIiN9Vbmijy-JZfJ4rsaTxe0zHitQZvOhaErFG5itnYBRudAeVFm9FVcUdBTue2Na4rsYVCIrZRaiY6ijvIRr3jDvbV5y97Q-dnZQk4lyRFnAqK4sibFWq8yJOSPVfjEShl4cbLIRA1ivAbr8TGbazZ7JB9iS2bsHqVJKqjJDN6l_-WpsYsyWFrrXEJCYCaRUSDbXKx1Crv2mncTJSuIFge9AbY4V0P-4m5zEzz7AxdzO3X9aQKLx9fWBlsmhAZKFncDII6NdfqslPsTMqesDga6jvabFrf7ZntSZBq2kD8iaUYlArDzto7c2GCLqtbq8QopMvWVRJeCMa1T3gO66UFC2VtmYio2h_ErMg1GAL_wAia9iHQ9-CrBw5-kdNeJoQMlCcqAbh729DnWwpVRhjrdu-UhA-VbtMaAIcL2QuSehwGMoGXoscWU9TMt8_WKtwQTQ_lyaBaJizhPBhOkjOFssPjNQYeanWhfjZfjcIobBwkdlWATMRNABcyJjAwzzAbaQKBowhT9SxG1iOz_e1BXZQOTh63EWBEdg0Ciy_o0t801EOavd6cWh71xCIK4GvKvC2xm1mD4PW-RCC5OdmvgVy2iaao9P1Tm33e71sRrHjI",
    },
];

/// ES256 on P-256.
pub(crate) const P256: EcProbe = EcProbe {
    x: "bNfWDnrq2Nguuz4VtWoxAgTJ2a108zk8MInBYf-xtRc",
    y: "JYW56UZczSyFPMao1uTAJBFWDerXUO5D5pZ4DBlZzO0",
    sig: "fjS0DvOKHNCF8uB0JXMNEsX17DacLdG6P0nPfmQNu54pvZ7rn71Dgjcsc9u-cZhm0Xc8aGZAMTpdYp27qbjVGg",
};

/// ES384 on P-384.
pub(crate) const P384: EcProbe = EcProbe {
    x: "7ZYI8r_WBBlciiuILn2ZOv-iuLqM0y1TPEEyYSpVctNebHd7JE7Q2T7hRrqRL1Xm",
    y: "PqfQBC8zWB81rVA6oaGkpVvEdUKfaY2QyGGpGYitI9_DlHb86HDBE4wFSEyCMp8r",
    sig: "LfphewjgzmCF5UvIn3mUHXXDHOgp7yi6M0hWySYdILOPD1Vbi-t9I3bP9IXYy0TKsB_HL-KFjsa3EvGSXtGC-WwxDJZpmTswLqdtky799GwXoR5UMY6I7jsIsuRJBvYE",
};

/// Ed25519: the public key and a signature of [`MESSAGE`].
pub(crate) const ED25519_KEY: &str = "Wa5WxZPyS1Al6ufqCDPlsNLtITEXgGQZmL1ZwcVOg9o";
pub(crate) const ED25519_SIG: &str =
    "3PL-yaxBmb9joCxs4zpIADimzsqL5dfhOtQpISgLpwvQ3HqSaO2FIuYRauRRA2w_oCmR2CkNKUU5IUsE6LXVDg";

/// Another RSA-2048 key (e = 65537) with the signatures the crypto_mb probe does not need
/// (generated the same way, for the OpenSSL engine's probe of every RSA algorithm).
pub(crate) const RSA_2048_B_N: &str = "oTgaJLe0603EIaLjBZU6ibyV0Fs6Z3qqE0FSfzsFSA3nrTcGX--f95s_w_Dvv08XUGETiDvqRA9V5uh49dUJTjknefpWNsPtFQ2Hp__bG_eOPpV5iicsAtHMfWRNGdRNEG-yca_vD7oMGF1hKT-x0QyBHf4JsIZhDWzcaoZirtU0Bri028JkXmbamQ4IBu8eVNPzQioU3bUkeNcJ576Sbp--6_Y1v9aV23hbAUDC95hvyrN-PIoVJ1SXIol2-Ez6vZeLmEtCJrrRhvSYnI5_JzJffr8DgKO9FzK-nQPLGBffNH0lBKNGpv12g5Q2lWUBDa2_a42hdb4B4hkhPPYVaQ";
/// RS384, RS512, PS384 and PS512 signatures of [`MESSAGE`] under [`RSA_2048_B_N`].
pub(crate) const RSA_2048_B_SIGS: [(crate::jose::Algorithm, &str); 4] = [
    (
        crate::jose::Algorithm::RS384,
        "mLehl-Kv0te72_9MYN-Rpq4EfiuwlTRAabvvLA_ryhO4QosmRqlz-VzDA6Yei92DWF7HpLQs1CR3L58BuiusecBDAtZ54ISPNa1D1UPG4g6K9ZG__446uQXgRTU01L77H0HDYdAFEIX2k4wyatDQaaJ48mwhLRvh1HK8zhB-HIec2gZTDXzdK_K-AKeGFxWlCuGOhG2kD1o10aSeG_dy-hZeRoQ58DIQlMhwq1T3eCHGnLTRL-uhSeZaQAiSP9jLMZGf17mXChbnju6nESYJamPZgbdVOuRWr4r_GlNX0NyHvCDMWZLCXOfugwnPRZHp5RM8gtdID1vfqsVcx1OCGg",
    ),
    (
        crate::jose::Algorithm::RS512,
        "TzEGtQARe3iuNo9uUEI0S3gA0XyVhyhVHtp7MpA8-ZRrSMztsEhRhRofz0VmO9d1zZbnXoimaBkaT6CS6tIBdX2_r-8rxKJ3tajCSnn77LyHtmFfNG-2IyZFancQxf4n5BwnTidVNheDMizbA3DMhJq4U5wBuTUtrd_V_YCvgi7quoI_jxUKwxobe1TG9EvhxImzMOUf6yXmPah9XNClk7Oh5webE8Cq67mHrmD8fyKAsYh5ZWSANTkNE2Qukng3VhOR1tkzSIbLfZPogYP3qc10q5l4W8IFAIi-37NlnzoIP7nYJxoWlyTNxHuKKTGsy1D9QCwWIloj9zrQHiQABw",
    ),
    (
        crate::jose::Algorithm::PS384,
        "diDpSYWwAt5BD4EE-GZfcHxvkBj6gL9QXwIq6-Ea4xlgZ4bzm5gCmF5JJFEOzDq1Kkl4PjKGhdjVqfIqT6aPuXrfOKL3a4fVoCLWZ46zYcA_c2tK0KnhKxLe4TXuCz0ALkWvUOhgZ6B4kEla9Pa2l-Urrn3U5zln5pkONJ2k-ajgNyphuNIiNVinyBEX5MN1UnqJvweBdxAMUm7YEQUorOPBXioSwgQplteST0v1mYiPYDQ34tva6t4HJ8u8IHaWuCAilgRM1oOsoZui4gscfK_VzdxPjzqsK0q1H07rbx4Eg2eDigtgNNTslPdp29KA1MNV00bYUdgQ1D1ZzLr8AA",
    ),
    (
        crate::jose::Algorithm::PS512,
        "kc23uzpG1592Dm6sRZ7ct0B_aw6BVbQDEBLYdCuURsOAno02l-5JpI05RTTXxsI2sVMg4BRs3jdWISEbkSkPIKkxJvHiPYRipRZx0hd8QFLbwB4E_dlzhRQ1TofX20j8Zffz7rg7D_OuCn0_CM2erKFkQ4vdBToZSDiWyRHHzT7QhObRapg363DQFbkDFeTGMAdgs2VSp82ba2Ze2KKaJTOAFklTF-53Ask6XzQIKYPJI4284H2qmuHIrn0LjM2KXBI87Sz7pH3h0J-J22xy6MALYq6NsvrnKtYAE1lSqv5EUDB4S5-gkOUAPweq6UhfHV_ZO1qxpoHV162DqyANGA",
    ),
];

/// ES512 on P-521.
pub(crate) const P521: EcProbe = EcProbe {
    x: "AH-i7q9smborBqIEKkf3YbTGcBFdMleT_w531C4OAwN197nrzN9IoDvW1a6-d0GOnV5fGPIh9xNcSn2Wy8anIthw",
    y: "ADLy548Awx3m7A8E5SSjzcY0QH69YoYXQ8YOr7DWgT9KTXDiZ8XfoEEqdkU1NXt-WpTlC4oH97XugyOYyqYxOKmy",
    sig: "AbwlOi2Ih5e_yPCi3BsHAFQ8PrxPJrEIhhJ5tNSsmbV5hymQIfFLOJyo_VlNWVZI-XxMrSUzsml4W7B5svfV5D7yAW9LpptAd7ZvJjTCwm3bAxe0aYM1UY0TxNCReh3ZLcexp50tpPqOIzVmiuSX8a9uwLa-DIgVHfQaFmYPKSqX-yO6",
};

/// ES256K on secp256k1.
pub(crate) const SECP256K1: EcProbe = EcProbe {
    x: "68I6GqGIbMcIXDfh__fK0tszOcICFaC-Bd2qVtgeM3o",
    y: "fddDLbvtTDxFW8EqL-0tF-zI-TaFPicKjf5kMycaX68",
    sig: "hm9GpbZHycISbdjbMgwYpiiOZY096imBKFVkJutJk4HIepE_mm7b7TEStyZRjR2VDNeWEJ_ixcxz0GBQY1lvZw",
};
